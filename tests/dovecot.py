"""A real Dovecot on 127.0.0.1 for tests: one config file in a temp dir, stoppable and restartable."""

from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

PASSWORD = "secret"
USER = "listbot"

_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
listen = 127.0.0.1
protocols = imap
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Ln
auth_failure_delay = 0
mail_location = maildir:{root}/mail/%u
{identity}
passdb {{
  driver = static
  args = password={password} nodelay=yes
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
protocol imap {{
  mail_max_userip_connections = 1000
}}
service imap-login {{
  {login_chroot}
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
  }}
}}
service anvil {{
  {anvil_chroot}
  # No growing penalty after failed logins (tests fail logins on purpose, from one IP).
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG = 1: a killed test run leaves no Dovecot behind.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


class Dovecot:
    """One Dovecot master process; `stop()` and `start()` keep the port and the mail folder."""

    def __init__(self, tls: bool = False) -> None:
        binary = dovecot_binary()
        if binary is None:
            raise RuntimeError("dovecot is not installed (apt-get install dovecot-imapd)")
        self.binary = binary
        # Mail processes run as a user that must traverse this folder: not pytest's 0700 tmp_path.
        self.root = Path(tempfile.mkdtemp(prefix="listbot-dovecot-"))
        self.root.chmod(0o711)
        self.port = free_port()
        self.user = USER
        self.password = PASSWORD
        if os.geteuid() == 0:
            # As root, Dovecot refuses uid 0 for mail processes: use nobody.
            nobody = pwd.getpwnam("nobody")
            self.uid, self.gid = nobody.pw_uid, nobody.pw_gid
            identity = ""
            chroot = ""
        else:
            self.uid, self.gid = os.getuid(), os.getgid()
            me = pwd.getpwuid(self.uid).pw_name
            identity = f"default_internal_user = {me}\ndefault_internal_group = {me}\ndefault_login_user = {me}"
            chroot = "chroot ="
        for sub in ("run", "state", "mail", "home"):
            (self.root / sub).mkdir()
        for sub in ("mail", "home"):
            os.chown(self.root / sub, self.uid, self.gid)
        # With tls: STARTTLS on `port`, implicit TLS on `tls_port`, a self-signed certificate for
        # 127.0.0.1 in `cert` (a client trusts it through SSL_CERT_FILE).
        self.tls_port = free_port() if tls else 0
        self.cert = self.root / "cert.pem"
        ssl = "ssl = no"
        if tls:
            key = self.root / "key.pem"
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", str(key), "-out", str(self.cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                 "-addext", "subjectAltName=IP:127.0.0.1"],
                check=True, capture_output=True,
            )
            ssl = f"ssl = yes\nssl_cert = <{self.cert}\nssl_key = <{key}"
        self.conf = self.root / "dovecot.conf"
        self.conf.write_text(
            _CONF.format(
                root=self.root, password=PASSWORD, uid=self.uid, gid=self.gid, port=self.port,
                identity=identity, login_chroot=chroot, anvil_chroot=chroot, ssl=ssl, tls_port=self.tls_port,
            )
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def maildir(self) -> Path:
        return self.root / "mail" / self.user

    def start(self, timeout: float = 10.0) -> None:
        """Start the master (from the main thread: the parent-death signal follows the starting thread)."""
        assert self.proc is None, "already running"
        self.proc = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.conf)],
            start_new_session=True,
            preexec_fn=_die_with_parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                self.proc = None
                raise RuntimeError(f"dovecot exited at start: {err.strip()} (log: {self.log()})")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.01)
        self.stop(kill=True)
        raise RuntimeError(f"dovecot did not listen on 127.0.0.1:{self.port} within {timeout} s")

    def stop(self, kill: bool = False) -> None:
        """SIGTERM to the process group (SIGKILL at once when `kill`, or after 0.5 s)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=5)
        if kill:
            # Children (imap, auth) of a SIGKILLed master die with their group; wait until the port is free.
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.1):
                        time.sleep(0.01)
                except OSError:
                    break
        if proc.stderr:
            proc.stderr.close()

    def log(self) -> str:
        try:
            return (self.root / "dovecot.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def deliver(self, raw: bytes, folder: str = "") -> Path:
        """Write one message straight into the Maildir (`folder` '' is INBOX), as a local delivery would."""
        base = self.maildir / f".{folder}" if folder else self.maildir
        for sub in ("", "cur", "new", "tmp"):
            d = base / sub
            if not d.exists():
                d.mkdir(parents=True)
                os.chown(d, self.uid, self.gid)
        name = f"{time.time():.6f}.{uuid.uuid4().hex}.listbot-test"
        tmp = base / "tmp" / name
        tmp.write_bytes(raw.replace(b"\r\n", b"\n"))
        os.chown(tmp, self.uid, self.gid)
        final = base / "new" / name
        tmp.rename(final)
        return final

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
