"""bench/watch-soak.sh's check: the server's dump (what it removed and what it still holds)
against the Message-IDs stored in every Maildir's new/ and cur/.

    python3 bench/soak_check.py SERVER_DUMP MAILDIR_ROOT

Prints KEY=VALUE lines; exits 1 if a message was lost, stored twice, stored truncated, or the
server still had open sessions."""

import os
import re
import sys
from collections import Counter

ID = re.compile(rb"^Message-ID: <u(\d+)-(\d+)@manyusers>\r?$", re.M)


def main(dump_path, root):
    removed, handed, counters, faults = {}, {}, {}, {}
    with open(dump_path) as f:
        for line in f:
            parts = line.split()
            if parts[0] == "user":
                removed[int(parts[1])] = int(parts[2])
                handed[int(parts[1])] = parts[3] == "1"
            elif parts[0] == "fault":
                faults[(parts[1], parts[2])] = int(parts[3])
            else:
                counters[parts[0]] = int(parts[1])

    stored = Counter()
    truncated = unreadable = files = 0
    for user in os.listdir(root):
        for sub in ("new", "cur"):
            d = os.path.join(root, user, sub)
            if not os.path.isdir(d):
                continue
            for name in os.listdir(d):
                files += 1
                with open(os.path.join(d, name), "rb") as f:
                    data = f.read()
                m = ID.search(data)
                if not m:
                    unreadable += 1
                    continue
                key = (int(m.group(1)), int(m.group(2)))
                stored[key] += 1
                if not data.rstrip(b"\r\n").endswith(b"end of <u%d-%d@manyusers>" % key):
                    truncated += 1

    duplicates = sum(c - 1 for c in stored.values() if c > 1)
    lost = 0  # removed from the server and not stored
    unknown = 0  # stored but never handed out by the server
    still_held_stored = still_held_not_stored = 0
    for n, gone in removed.items():
        lost += sum(1 for seq in range(gone) if stored[(n, seq)] == 0)
        if handed[n]:
            if stored[(n, gone)]:
                still_held_stored += 1
            else:
                still_held_not_stored += 1
    for (n, seq) in stored:
        if n not in removed or seq > removed[n] or (seq == removed[n] and not handed[n]):
            unknown += 1

    drops = sum(v for (mode, _), v in faults.items() if mode == "drop")
    stalls = sum(v for (mode, _), v in faults.items() if mode == "stall")
    print(f"server_sessions={counters.get('sessions_total', 0)}")
    print(f"server_sessions_open_after_watch_exit={counters.get('sessions_open', -1)}")
    print(f"server_drops_fired={drops}")
    print(f"server_stalls_fired={stalls}")
    for (mode, point), v in sorted(faults.items()):
        print(f"server_{mode}_{point}={v}")
    print(f"messages_removed_by_server={sum(removed.values())}")
    print(f"messages_still_on_server_handed_out={sum(handed.values())}")
    print(f"messages_still_on_server_already_stored={still_held_stored}")
    print(f"messages_created={sum(removed.values()) + sum(handed.values())}")
    print(f"maildir_files={files}")
    print(f"distinct_messages_stored={len(stored)}")
    print(f"duplicates={duplicates}")
    print(f"lost={lost}")
    print(f"truncated={truncated}")
    print(f"unreadable={unreadable}")
    print(f"unknown={unknown}")
    ok = (
        duplicates == 0
        and lost == 0
        and truncated == 0
        and unreadable == 0
        and unknown == 0
        and counters.get("sessions_open", -1) == 0
    )
    print(f"check={'ok' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
