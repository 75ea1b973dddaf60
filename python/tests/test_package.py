"""The package's shape: the stubs match the compiled module, py.typed ships, the API names."""

import ast
import os
from pathlib import Path

import pytest

import popwire
from popwire import _popwire

PACKAGE = Path(popwire.__file__).resolve().parent


def stub_tree() -> ast.Module:
    return ast.parse((PACKAGE / "_popwire.pyi").read_text())


def test_stubs_match_the_compiled_module():
    tree = stub_tree()
    stubbed = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            stubbed.add(node.name)
            runtime = getattr(_popwire, node.name)
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and not item.name.startswith("__"):
                    assert hasattr(runtime, item.name), f"{node.name}.{item.name} is in the stub only"
            names = {i.name for i in node.body if isinstance(i, ast.FunctionDef)}
            for attr in dir(runtime):
                if not attr.startswith("_"):
                    assert attr in names or any(
                        isinstance(i, ast.AnnAssign) and i.target.id == attr for i in node.body  # type: ignore[union-attr]
                    ), f"{node.name}.{attr} is missing from the stub"
        elif isinstance(node, ast.FunctionDef):
            stubbed.add(node.name)
            assert callable(getattr(_popwire, node.name))
    public = {n for n in dir(_popwire) if not n.startswith("_")}
    assert public <= stubbed, public - stubbed


def test_py_typed_ships():
    assert (PACKAGE / "py.typed").exists()


def test_the_api_names():
    for name in ("Client", "AsyncClient", "Engine", "fetch", "Account", "Error", "ServerError", "AuthError",
                 "TlsError", "ProtocolError", "ConfigError", "TimeoutError"):
        assert name in popwire.__all__ and hasattr(popwire, name)
    from popwire import poplib, testing

    assert testing.Server and poplib.POP3


@pytest.mark.skipif(not os.environ.get("POPWIRE_EXPECT_INSTALLED"), reason="only in the installed-wheel runs")
def test_the_installed_wheel_is_what_runs():
    """run-tests.sh --wheel: popwire comes from the venv's site-packages, not the source tree."""
    venv = Path(os.environ["POPWIRE_EXPECT_INSTALLED"]).resolve()
    assert venv in PACKAGE.parents and "site-packages" in PACKAGE.parts
    assert Path(_popwire.__file__).resolve().parent == PACKAGE
    meta = next((PACKAGE.parent).glob("popwire-*.dist-info"))
    assert "Tag: cp38-abi3-manylinux_2_17_x86_64" in (meta / "WHEEL").read_text()
