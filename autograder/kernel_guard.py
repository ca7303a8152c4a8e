"""Code the grader sends to a grading kernel (``CourseExecute``): it is not imported by the grader.

Sent once, silently, before the notebook's first cell, it records the pristine state of the kernel's
machinery and installs ``sys.modules["_workbook_guard"]`` with three functions the grader calls
through silent execute requests:

- ``mark()`` before and ``record()`` after each locked setup cell: the names that cell bound (and the
  ``helpers`` modules loaded so far) are remembered as the setup made them;
- ``restore()`` before each graded test cell: IPython's and ipykernel's classes, the shell's
  traceback/display/transformer/event machinery, ``builtins``, ``sys`` hooks and streams, trace and
  profile functions, the ``helpers`` modules' names and the names the setup cells bound are put back
  as they were, so an answer that patched them earlier cannot change how a test cell runs or reports.

It runs inside the submission's own process, so a submission written against this file can still
defeat it (autograder/README.md, "What a submission can still do"); the grader's nonce check
(a test cell must print a per-run secret at its very end) catches the rest of the generic attacks.
"""


def _install():  # everything lives in this closure; nothing is left in the learner's namespace
    import builtins
    import sys
    import threading
    import types

    ip = get_ipython()  # noqa: F821 (the kernel's shell)

    def ours(cls):
        return (cls.__module__ or "").split(".")[0] in ("IPython", "ipykernel", "jupyter_client", "traitlets", "zmq")

    objects = [ip, ip.kernel, ip.kernel.session, ip.display_pub, ip.displayhook, ip.display_formatter,
               ip.InteractiveTB, ip.SyntaxTB, ip.compile, ip.input_transformer_manager, sys.stdout, sys.stderr]
    classes = {cls for obj in objects for cls in type(obj).__mro__ if ours(cls)}
    class_dicts = {cls: dict(vars(cls)) for cls in classes}
    instance_dicts = [(obj, dict(vars(obj))) for obj in objects if hasattr(obj, "__dict__")]
    builtin_names = dict(vars(builtins))
    sys_names = {name: getattr(sys, name) for name in (
        "excepthook", "displayhook", "stdout", "stderr", "stdin", "exit", "breakpointhook", "unraisablehook",
        "__excepthook__", "__displayhook__", "__stdout__", "__stderr__") if hasattr(sys, name)}
    lists = {name: list(getattr(ip, name)) for name in (
        "ast_transformers", "input_transformers_cleanup", "input_transformers_post")}
    manager_lists = {name: list(getattr(ip.input_transformer_manager, name)) for name in (
        "cleanup_transforms", "line_transforms", "token_transformers")}
    shell_values = {name: getattr(ip, name) for name in (
        "display_pub", "displayhook", "display_trap", "display_formatter", "InteractiveTB", "SyntaxTB",
        "compile", "input_transformer_manager", "custom_exceptions", "CustomTB", "kernel", "user_ns",
        "user_global_ns", "ast_node_interactivity", "autocall", "builtin_trap")}
    events = {name: list(callbacks) for name, callbacks in ip.events.callbacks.items()}
    modules: dict = {}
    setup_names: dict = {}
    marked: dict = {}

    def snapshot_modules():
        for name, module in list(sys.modules.items()):
            if isinstance(module, types.ModuleType) and (name == "helpers" or name.startswith("helpers.")
                                                         or name in ("pandas.testing", "numpy.testing")):
                modules.setdefault(name, (module, dict(vars(module))))

    def mark():
        marked.clear()
        marked.update({name: id(value) for name, value in ip.user_ns.items()})

    def record():
        for name, value in ip.user_ns.items():
            if not name.startswith("_") and marked.get(name) != id(value):
                setup_names[name] = value
        snapshot_modules()

    def restore():
        sys.settrace(None)
        sys.setprofile(None)
        threading.settrace(None)
        threading.setprofile(None)
        for cls, saved in class_dicts.items():
            for key in [k for k in vars(cls) if k not in saved]:
                try:
                    delattr(cls, key)
                except (AttributeError, TypeError):
                    pass
            for key, value in saved.items():
                if vars(cls).get(key, saved) is not value:
                    try:
                        setattr(cls, key, value)
                    except (AttributeError, TypeError):
                        pass
        for obj, saved in instance_dicts:
            current = vars(obj)
            for key in [k for k, v in current.items() if k not in saved and callable(v)]:
                del current[key]
            for key, value in saved.items():
                if callable(value) and current.get(key, saved) is not value:
                    current[key] = value
        for key in [k for k in vars(builtins) if k not in builtin_names and not k.startswith("_")]:
            delattr(builtins, key)
        vars(builtins).update(builtin_names)
        for name, value in sys_names.items():
            setattr(sys, name, value)
        for name, value in shell_values.items():
            if getattr(ip, name) is not value:
                setattr(ip, name, value)
        for name, saved in lists.items():
            getattr(ip, name)[:] = saved
        for name, saved in manager_lists.items():
            getattr(ip.input_transformer_manager, name)[:] = saved
        ip.events.callbacks.clear()
        ip.events.callbacks.update({name: list(callbacks) for name, callbacks in events.items()})
        for name, (module, saved) in modules.items():
            sys.modules[name] = module
            for key in [k for k in vars(module) if k not in saved and not k.startswith("__")]:
                delattr(module, key)
            vars(module).update(saved)
        for name, value in setup_names.items():
            if ip.user_ns.get(name, setup_names) is not value:
                ip.user_ns[name] = value

    sys.modules["_workbook_guard"] = types.SimpleNamespace(mark=mark, record=record, restore=restore)


_install()
del _install
