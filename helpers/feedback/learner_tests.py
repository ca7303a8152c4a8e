"""Grade the tests a learner writes: they must pass on a right answer and fail on wrong ones.

The "Testing" part of each lab's rubric asks the learner to write ``test_*`` functions for their own
code, in a notebook cell. A graded cell then runs those functions

- against the learner's own implementation and a reference one (every test must pass), and
- against broken variants of the same function (each variant must make at least one test fail),

by putting each implementation in place of the name the tests call (the notebook's global, for the
duration of the run). The reference and most broken variants live in the graded cell's hidden tests,
so the learner sees only whether their tests caught them, and a one-line description of what each
caught or missed.

Example (in a graded cell)::

    from helpers.feedback.learner_tests import check_learner_tests
    report = check_learner_tests(globals(), target="transform_orders", min_tests=3,
                                 broken={"keeps malformed rows": lambda df: df})
    print(report)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

_MISSING = object()


@dataclass
class TestRun:
    """What the learner's tests did against one implementation."""

    label: str
    passed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # test name -> one-line reason

    @property
    def ok(self) -> bool:
        return not self.failed

    def line(self) -> str:
        if self.ok:
            return f"{self.label}: all {len(self.passed)} test(s) pass"
        names = ", ".join(f"{name} ({reason})" for name, reason in self.failed.items())
        return f"{self.label}: {len(self.failed)} of {len(self.passed) + len(self.failed)} failed: {names}"


@dataclass
class LearnerTestReport:
    """Every run of the learner's tests, with the verdicts a graded cell asserts on."""

    tests: list[str]
    runs: list[TestRun]
    broken_labels: list[str]

    @property
    def caught(self) -> list[str]:
        return [r.label for r in self.runs if r.label in self.broken_labels and not r.ok]

    @property
    def missed(self) -> list[str]:
        return [r.label for r in self.runs if r.label in self.broken_labels and r.ok]

    def __str__(self) -> str:
        lines = [f"{len(self.tests)} test(s): {', '.join(self.tests) or '-'}"]
        for run in self.runs:
            verdict = ("caught" if not run.ok else "MISSED") if run.label in self.broken_labels else (
                "ok" if run.ok else "FAILS")
            lines.append(f"  [{verdict}] {run.line()}")
        return "\n".join(lines)


def collect_tests(namespace: Mapping[str, Any], prefix: str = "test_") -> dict[str, Callable[[], Any]]:
    """Return the learner's test functions: callables in ``namespace`` named ``prefix*``, in definition order.

    Args:
        namespace: the notebook's ``globals()``.
        prefix: the name prefix pytest uses.
    """
    return {name: value for name, value in namespace.items()
            if name.startswith(prefix) and callable(value) and getattr(value, "__code__", None) is not None
            and value.__code__.co_argcount == 0}


def _reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    text = text.splitlines()[0] if text else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def run_tests(tests: Mapping[str, Callable[[], Any]], namespace: MutableMapping[str, Any], target: str,
              implementation: Any, label: str) -> TestRun:
    """Run every test with ``namespace[target]`` replaced by ``implementation``; restore it after.

    A test fails when it raises anything (an ``AssertionError`` or an error of the implementation).
    """
    run = TestRun(label)
    saved = namespace.get(target, _MISSING)
    namespace[target] = implementation
    try:
        for name, test in tests.items():
            try:
                test()
            except Exception as exc:  # noqa: BLE001 - any exception is a failing test
                run.failed[name] = _reason(exc)
            else:
                run.passed.append(name)
    finally:
        if saved is _MISSING:
            namespace.pop(target, None)
        else:
            namespace[target] = saved
    return run


def run_my_tests(namespace: Mapping[str, Any], prefix: str = "test_") -> None:
    """Run the learner's own ``test_*`` functions on their own code and print one line per test.

    For the "check your work" cells: every test runs (a failure does not hide the next one), and a
    failing test prints its reason. Nothing is replaced; the graded cells use :func:`check_learner_tests`.

    Args:
        namespace: the notebook's ``globals()``.
        prefix: the test-name prefix.
    """
    tests = collect_tests(namespace, prefix)
    if not tests:
        print(f"no {prefix}... functions yet: write them in the cell above (no arguments, one assert each)")
        return
    run = TestRun("your tests")
    for name, test in tests.items():
        try:
            test()
        except Exception as exc:  # noqa: BLE001 - any exception is a failing test
            run.failed[name] = _reason(exc)
            print(f"{name}: FAILED ({run.failed[name]})")
        else:
            run.passed.append(name)
            print(f"{name}: passed")
    print(run.line())


def check_learner_tests(namespace: MutableMapping[str, Any], target: str, *,
                        broken: Mapping[str, Any], reference: Any = None, min_tests: int = 2,
                        prefix: str = "test_") -> LearnerTestReport:
    """Assert that the learner's tests pass on right answers and catch every broken variant.

    Args:
        namespace: the notebook's ``globals()`` (where the tests and ``target`` live).
        target: the name the tests call, e.g. ``"transform_orders"``.
        broken: a description of each broken variant -> the variant (same signature as ``target``).
        reference: a known-right implementation; when given, the tests must pass on it too.
        min_tests: how many ``test_*`` functions are expected at least.
        prefix: the test-name prefix.

    Returns:
        The report (print it for the learner).

    Raises:
        AssertionError: with a message that says what to fix (too few tests, a test failing on a right
            answer, a broken variant no test caught).
    """
    tests = collect_tests(namespace, prefix)
    assert len(tests) >= min_tests, (
        f"found {len(tests)} test function(s) ({', '.join(tests) or 'none'}); write at least {min_tests} "
        f"functions named {prefix}... that take no arguments and assert on {target}(...)")
    own = namespace.get(target, _MISSING)
    assert own is not _MISSING, f"define {target} before testing it"
    runs = [run_tests(tests, namespace, target, own, f"your {target}")]
    if reference is not None:
        runs.append(run_tests(tests, namespace, target, reference, f"reference {target}"))
    runs += [run_tests(tests, namespace, target, variant, label) for label, variant in broken.items()]
    report = LearnerTestReport(list(tests), runs, list(broken))
    print(report)
    failing = [r for r in runs if r.label not in broken and not r.ok]
    assert not failing, (
        "your tests should pass on a correct implementation:\n  " + "\n  ".join(r.line() for r in failing)
        + "\n(a failing test may expect the wrong value, or call the function with the wrong arguments)")
    assert not report.missed, (
        f"no test failed on these broken versions of {target}: {'; '.join(report.missed)}. "
        "Add a test whose assertion tells a right result from that wrong one.")
    return report

