"""Lines a user sees during a long build, also under a plain `pip install .`.

pip hides a build backend's output unless it runs with -v, so a 20-minute
compile shows nothing but a spinner. A line goes to the process's terminal
when it has one (`/dev/tty`: pip or not, the user sees it, once) and to
stderr otherwise (CI logs, `pip install -v` without a terminal).
W4A16_PROGRESS=0 silences the terminal copy. Build tooling only.

    python progress.py --say "text"
"""

from __future__ import annotations

import os
import sys


def say(line: str) -> None:
    if os.environ.get("W4A16_PROGRESS", "1") != "0":
        try:
            with open("/dev/tty", "w") as tty:
                tty.write("\r\033[K" + line + "\n")  # from the start of a clean line (pip's spinner)
            return
        except OSError:
            pass  # no controlling terminal (CI, a service): stderr below
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--say":
        say(sys.argv[2])
    else:
        print("usage: progress.py --say TEXT", file=sys.stderr)
        sys.exit(2)
