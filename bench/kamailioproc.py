"""Start and stop the Kamailio of bench/kamailio/ for `make bench`'s side-by-side runs.

Like tests/serverproc.py's ServerProcess: free loopback ports picked at start,
`.udp_port`, `.process.pid` (the main process; run.py counts its children's CPU too),
`stop()`. Kamailio is started by bench/kamailio/start-kamailio.sh with the settings below
(memory-only presence, 4 UDP children, 2 GB of shared memory) and its working directory
where the caller says, so nothing outlives the run. Anything missing or a start that fails
raises KamailioFailed: a comparison without Kamailio would mislead, so the run stops.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

KAMAILIO_DIR = Path(__file__).resolve().parent / "kamailio"
CONFIG = KAMAILIO_DIR / "kamailio-presence.cfg"
PACKAGES = (
    "kamailio kamailio-presence-modules kamailio-sqlite-modules "
    "kamailio-websocket-modules kamailio-xml-modules"
)
INSTALL_HINT = f"run tools/install-system-deps.sh bench (apt-get install {PACKAGES})"
# The settings of ../shared/anchors/kamailio/README.md's measurements.
SETTINGS = {"KAM_MEMONLY": "1", "KAM_CHILDREN": "4", "KAM_SHM_MB": "2048"}


class KamailioFailed(RuntimeError):
    """Kamailio is not installed, or did not start or answer."""


def version() -> str:
    """The first line of `kamailio -v` (`version: kamailio 5.6.3 (x86_64/linux)`)."""
    try:
        result = subprocess.run(["kamailio", "-v"], capture_output=True, text=True, timeout=10)
    except FileNotFoundError:
        raise KamailioFailed(f"kamailio not found: {INSTALL_HINT}") from None
    lines = (result.stdout or result.stderr).strip().splitlines()
    if result.returncode != 0 or not lines:
        raise KamailioFailed(f"`kamailio -v` failed: {INSTALL_HINT}")
    return lines[0].strip()


def check_config() -> None:
    """Parse the config and load its modules (`kamailio -c`), so that a missing module
    package fails before any load runs, not half-way through the run."""
    command = ["kamailio", "-c", "-f", str(CONFIG), "-A", "PRES_MEMONLY"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
        raise KamailioFailed(
            f"kamailio cannot load {CONFIG.name}: {' / '.join(errors[-3:])}; {INSTALL_HINT}"
        )


def free_port(avoid: int = 0) -> int:
    """A loopback port free for UDP and TCP both (Kamailio's SIP listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            if port != avoid:
                return port
    raise KamailioFailed("no free loopback port for Kamailio")


class KamailioProcess:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.udp_port = self.ws_port = self.pid = 0
        self.started = ""  # start-kamailio.sh's line: pid, port, children, memory

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **SETTINGS,
            "KAM_WORKDIR": str(self.workdir),
            "KAM_SIP_PORT": str(self.udp_port),
            "KAM_WS_PORT": str(self.ws_port),
        }

    @property
    def process(self) -> SimpleNamespace:
        """As ServerProcess.process: run.py reads `.process.pid` for the CPU counts."""
        return SimpleNamespace(pid=self.pid)

    def start(self) -> KamailioProcess:
        self.udp_port = free_port()
        self.ws_port = free_port(avoid=self.udp_port)
        script = str(KAMAILIO_DIR / "start-kamailio.sh")
        result = subprocess.run([script], env=self.env, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise KamailioFailed(f"Kamailio did not start: {result.stderr.strip()}")
        self.started = result.stdout.strip()
        self.pid = int((self.workdir / "kamailio.pid").read_text())
        if not self._answers_options():
            self.stop()
            raise KamailioFailed(f"Kamailio does not answer OPTIONS:\n{self.log_tail()}")
        return self

    def _answers_options(self, attempts: int = 20) -> bool:
        """The pidfile is written before every child listens: wait for a 200 to OPTIONS."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            udp.settimeout(0.25)
            here = f"127.0.0.1:{udp.getsockname()[1]}"
            for attempt in range(attempts):
                udp.sendto(_options(here, self.udp_port, attempt), ("127.0.0.1", self.udp_port))
                try:
                    if udp.recv(65535).startswith(b"SIP/2.0 200"):
                        return True
                except TimeoutError:
                    time.sleep(0.1)
        return False

    def stop(self) -> None:
        if not self.pid:
            return
        script = str(KAMAILIO_DIR / "stop-kamailio.sh")
        subprocess.run([script], env=self.env, capture_output=True, text=True, timeout=60)
        self.pid = 0

    def log_tail(self, lines: int = 30) -> str:
        log = self.workdir / "kamailio.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def logged_errors(self) -> bool:
        log = self.workdir / "kamailio.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return any(word in text for word in ("ERROR:", "CRITICAL:", "ALERT:", "BUG:"))


def _options(here: str, port: int, attempt: int) -> bytes:
    tag = secrets.token_hex(4)
    return (
        f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {here};branch=z9hG4bK{tag}{attempt};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:bench@127.0.0.1>;tag={tag}\r\n"
        f"To: <sip:127.0.0.1:{port}>\r\n"
        f"Call-ID: {tag}-{attempt}@bench\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
