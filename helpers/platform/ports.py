"""Who is listening on a port: used by the broker start and the doctor to give useful hints."""

from __future__ import annotations

import socket


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Return True if something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def port_owner(port: int) -> str | None:
    """Describe the process listening on ``port`` (``"java (pid 123)"``), or None if it is free.

    Falls back to ``"an unknown process"`` where the OS does not let us see other processes.
    """
    if not port_in_use(port):
        return None
    try:
        import psutil

        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
                if conn.pid:
                    try:
                        proc = psutil.Process(conn.pid)
                        return f"{proc.name()} (pid {conn.pid}: {' '.join(proc.cmdline()[:3])[:80]})"
                    except psutil.Error:
                        return f"pid {conn.pid}"
    except (ImportError, PermissionError, OSError):
        pass
    return "an unknown process"


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
