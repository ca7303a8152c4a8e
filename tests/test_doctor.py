"""The doctor: one line per check, a hint for each problem, never an exception."""

from __future__ import annotations

import os

import pytest

from helpers.platform import doctor, jvm


def test_all_lines_printed_and_kafka_ok(kafka_broker, capsys):
    results = doctor.doctor(services=("kafka", "spark"))
    out = capsys.readouterr().out
    names = [r.name for r in results]
    assert names == ["python", "java", "maven", "memory", "ports", "kafka", "spark"]
    assert all(r.ok for r in results), out
    assert out.count("\n") >= len(results) and "Ready." in out


def test_missing_java_gets_an_install_hint(monkeypatch):
    monkeypatch.setenv("JAVA_HOME", "/nonexistent")
    monkeypatch.setenv("PATH", "/nonexistent")
    check = doctor.check_java()
    assert not check.ok
    assert "openjdk-17" in check.hint and "JAVA_HOME" in check.hint


def test_unreachable_external_broker_names_the_variable(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    check = doctor.check_kafka()
    assert not check.ok and "KAFKA_BOOTSTRAP_SERVERS" in check.detail
    assert "unset it" in check.hint


def test_port_taken_names_the_process(monkeypatch, tmp_path):
    import socket

    monkeypatch.setenv("WORKBOOK_STATE", str(tmp_path))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        monkeypatch.setenv("WORKBOOK_KAFKA_PORT", str(sock.getsockname()[1]))
        check = doctor.check_ports()
    assert not check.ok and f"pid {os.getpid()}" in check.detail and "WORKBOOK_KAFKA_PORT" in check.hint, (
        f"expected the port's owner (this process, pid {os.getpid()}) named with a hint, got {check}")


def test_a_crashing_check_becomes_a_line(monkeypatch, capsys):
    def boom():
        raise ValueError("disk on fire")

    monkeypatch.setitem(doctor.CHECKS, "java", boom)
    results = doctor.doctor(services=())
    java = next(r for r in results if r.name == "java")
    assert not java.ok and "disk on fire" in java.detail


@pytest.mark.parametrize("output, expected", [
    ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment (build 17.0.15+6-Debian-1deb12u1)', (17, "17.0.15")),
    ('java version "1.8.0_381"\nJava(TM) SE Runtime Environment (build 1.8.0_381-b09)', (8, "1.8.0_381")),
    ('openjdk version "21" 2023-09-19', (21, "21")),
    ('openjdk version "25-ea" 2025-09-16', (25, "25-ea")),
    ('Picked up JAVA_TOOL_OPTIONS: -Xmx1g\nopenjdk version "11.0.2" 2019-01-15', (11, "11.0.2")),
    ("bash: java: command not found", None),
    ('openjdk version "garbage"', None),
])
def test_java_version_parsing(output, expected):
    assert jvm.parse_java_version(output) == expected, f"{output!r}: expected {expected}"


def test_the_installed_java_is_found_and_new_enough():
    found = jvm.java_version()
    assert found is not None and found[0] >= jvm.MIN_JAVA, f"expected Java {jvm.MIN_JAVA}+, found {found}"
