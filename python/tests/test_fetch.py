"""popwire.fetch and popwire.Account against Dovecot: the whole mail-client job."""

import os
from pathlib import Path

import pytest

import popwire

from corpus import sized, tricky, wire_form

pytestmark = pytest.mark.dovecot


def stored(maildir: Path) -> list:
    files = sorted((maildir / "new").iterdir()) + sorted((maildir / "cur").iterdir())
    return [f.read_bytes() for f in files]


def lf(message: bytes) -> bytes:
    return wire_form(message).replace(b"\r\n", b"\n")


def account(dovecot, user, tmp_path, **kw) -> popwire.Account:
    kw.setdefault("maildir", tmp_path / "Mail" / user)
    return popwire.Account(
        user, email=f"{user}@example.com", username=user, server=dovecot.host, port=dovecot.tls_port,
        ca_file=dovecot.ca_file, password=dovecot.password, **kw,
    )


def test_fetch_accounts_built_in_code(dovecot, tmp_path):
    user = dovecot.new_user("fetch")
    messages = tricky()
    dovecot.seed(user, messages)
    seen = []
    summary = popwire.fetch(accounts=[account(dovecot, user, tmp_path)], progress=seen.append, state_dir=tmp_path / "state")
    assert summary.ok, summary.errors
    result = summary[user]
    assert (result.fetched, result.deleted) == (len(messages), len(messages))
    assert summary.fetched == len(messages) and summary.exit_code == 0
    assert sorted(stored(tmp_path / "Mail" / user)) == sorted(lf(m) for m in messages)
    assert dovecot.server_messages(user) == []
    kinds = [p.kind for p in seen]
    assert kinds[0] == "logged-in" and seen[0].tls is True
    assert "listed" in kinds and kinds.count("message") == len(messages) and "deleted" in kinds
    assert all(p.account == user for p in seen)


def test_fetch_from_a_config_file_and_keep(dovecot, tmp_path):
    user = dovecot.new_user("cfg")
    dovecot.seed(user, sized(5, 3000))
    config = tmp_path / "config.toml"
    config.write_text(account(dovecot, user, tmp_path, keep=True).to_toml())
    os.chmod(config, 0o600)
    first = popwire.fetch(config, state_dir=tmp_path / "state")
    assert first.ok and first[user].fetched == 5 and first[user].deleted == 0
    assert len(dovecot.server_messages(user)) == 5
    again = popwire.fetch(config, [user], state_dir=tmp_path / "state")
    assert again[user].fetched == 0 and again[user].kept == 5
    assert len(stored(tmp_path / "Mail" / user)) == 5


def test_config_errors_say_where_and_how(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[accounts.work]\nemail = "me@example.com"\nserver = "pop.example.com"\npassword = "x"\nsecurty = "tls"\n')
    with pytest.raises(popwire.ConfigError) as e:
        popwire.fetch(config, state_dir=tmp_path)
    assert e.value.kind == "config:unknown-key"
    assert e.value.line == 5
    assert e.value.key == "accounts.work.securty"
    assert "security" in e.value.fix
    with pytest.raises(popwire.ConfigError) as e:
        popwire.fetch(tmp_path / "missing.toml", state_dir=tmp_path)
    assert e.value.kind == "config:read"
    with pytest.raises(popwire.ConfigError) as e:
        popwire.fetch(accounts=[popwire.Account("a", email="a@b", server="s", password="p", security="smoke")], state_dir=tmp_path)
    assert e.value.kind == "config:bad-value"


def test_a_failing_account_does_not_stop_the_others(dovecot, tmp_path):
    good = dovecot.new_user("good")
    dovecot.seed(good, sized(2, 1000))
    bad = account(dovecot, dovecot.new_user("bad"), tmp_path)
    bad._values["password"] = "wrong"
    no_env = popwire.Account("noenv", email="x@example.com", server=dovecot.host, password_env="POPWIRE_SURELY_UNSET",
                             maildir=tmp_path / "noenv")
    summary = popwire.fetch(accounts=[bad, account(dovecot, good, tmp_path), no_env], state_dir=tmp_path / "state")
    assert not summary.ok
    assert isinstance(summary.errors[bad.name], popwire.AuthError)
    assert summary[bad.name].exit_code == 77
    assert isinstance(summary.errors["noenv"], popwire.ConfigError)
    assert summary[good].fetched == 2
    with pytest.raises(popwire.AuthError):
        summary.raise_for_errors()


def test_an_exception_in_progress_stops_the_run_and_keeps_what_was_stored(dovecot, tmp_path):
    user = dovecot.new_user("cancel")
    dovecot.seed(user, sized(30, 2000))

    def progress(p: popwire.FetchProgress) -> None:
        if p.kind == "message":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        popwire.fetch(accounts=[account(dovecot, user, tmp_path)], progress=progress, state_dir=tmp_path / "state")
    kept = len(stored(tmp_path / "Mail" / user))
    assert kept + len(dovecot.server_messages(user)) >= 30  # nothing lost
    summary = popwire.fetch(accounts=[account(dovecot, user, tmp_path)], state_dir=tmp_path / "state")
    assert summary.ok
    assert len(stored(tmp_path / "Mail" / user)) == 30
    assert dovecot.server_messages(user) == []


def test_account_repr_hides_the_password():
    a = popwire.Account("w", email="me@example.com", server="pop.example.com", password="hunter2")
    assert "hunter2" not in repr(a)
    assert a.server == "pop.example.com"
    assert 'password = "hunter2"' in a.to_toml()
