"""The grader's code that runs INSIDE a student's kernel, before and after the student's cells.

``attn grade`` sends this file's source to the kernel (see :func:`kernel_source`).
Before the student's cells, :func:`prepare` imports the heavy libraries the notebook
uses (so their import time does not count against a cell's limit) and caps what a
cell may print. After them, :func:`collect`, for one exercise, looks up ``exercise.target`` among the names the notebook
defined, runs every case (visible and hidden) with ``run_case``, and saves the
raw outcomes with ``torch.save`` as plain tensors, numbers, strings, lists and
dicts, which the grader reloads with ``torch.load(weights_only=True)`` and judges
in its own process.

The kernel's own ``utils`` modules are not trusted (the notebook may have
monkeypatched them): the checks are imported afresh from the course's source
folder into private module objects, and the kernel's modules are put back
afterwards. Nothing is judged here. The file needs only the standard library and
torch, and must define nothing at import time besides functions and constants.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

OPAQUE_KEY = "__attn_grade_opaque__"
MAX_ELEMENTS = 20_000_000  # a returned tensor larger than this is not shipped back
MAX_DEPTH = 12
_PLAIN = (bool, int, float, complex, str, type(None))


def _is_ours(name: str) -> bool:
    return name == "utils" or name.startswith("utils.")


def _fresh_utils(package_dir: str):
    """Import ``utils`` from ``package_dir`` into new module objects; the kernel's are set aside.

    Returns the kernel's modules (to restore with :func:`_restore`).
    """
    saved = {name: module for name, module in sys.modules.items() if _is_ours(name)}
    for name in saved:
        del sys.modules[name]
    importlib.invalidate_caches()
    spec = importlib.util.spec_from_file_location(
        "utils", f"{package_dir}/__init__.py", submodule_search_locations=[package_dir])
    module = importlib.util.module_from_spec(spec)
    sys.modules["utils"] = module
    spec.loader.exec_module(module)
    return saved


def _restore(saved) -> None:
    for name in [name for name in sys.modules if _is_ours(name)]:
        del sys.modules[name]
    sys.modules.update(saved)


def _same(kernel_obj, fresh_obj) -> bool:
    """Whether the kernel's object is still the course's (same code; classes: same methods)."""
    if kernel_obj is fresh_obj:
        return True
    if isinstance(fresh_obj, type):
        if not isinstance(kernel_obj, type) or kernel_obj.__qualname__ != fresh_obj.__qualname__:
            return False
        names = {name for name, value in vars(fresh_obj).items() if hasattr(value, "__code__")}
        return all(_same(vars(kernel_obj).get(name), vars(fresh_obj)[name]) for name in names)
    fresh_code = getattr(fresh_obj, "__code__", None)
    kernel_code = getattr(kernel_obj, "__code__", None)
    return fresh_code is not None and kernel_code is not None and kernel_code == fresh_code


def _tampering(saved, user_ns, core, exercise) -> list:
    """What the notebook changed in the checks (for the report; it cannot change the grade)."""
    notes = []
    for name, fresh_module in sorted(sys.modules.items()):
        if not name.startswith("utils.course.checks") or name not in saved:
            continue
        kernel_module = saved[name]
        for attribute, fresh_obj in sorted(vars(fresh_module).items()):
            if attribute.startswith("__") or not callable(fresh_obj):
                continue
            if getattr(fresh_obj, "__module__", None) != name:
                continue  # imported from elsewhere: judged where it is defined
            if not _same(getattr(kernel_module, attribute, None), fresh_obj):
                notes.append(f"{name}.{attribute} was replaced or changed")
    kernel_core = saved.get("utils.course.checks.core")
    if kernel_core is not None:
        registered = getattr(kernel_core, "_REGISTRY", {}).get(exercise.id)
        # not registered at all: the notebook never ran a check of this chapter
        if registered is not None and not _same_exercise(registered, exercise):
            notes.append(f"the registered exercise {exercise.id} was changed")
    if "check" in user_ns and not _same(user_ns["check"], core.check):
        notes.append("the notebook's `check` is not the course's check function")
    return notes


def _same_exercise(kernel_exercise, fresh) -> bool:
    try:
        return (kernel_exercise.target == fresh.target and kernel_exercise.points == fresh.points
                and [case.label for case in kernel_exercise.cases] == [case.label for case in fresh.cases]
                and all(_same(got.make, want.make)
                        for got, want in zip(kernel_exercise.cases, fresh.cases, strict=True)))
    except Exception:  # anything odd in the kernel's registry counts as changed
        return False


def _describe(error: BaseException) -> str:
    try:
        lines = str(error).strip().splitlines()
    except Exception:
        lines = []
    name = type(error).__name__
    return f"{name}: {lines[0][:300]}" if lines else name


def _opaque(value) -> dict:
    try:
        text = repr(value)[:200]
    except Exception:
        text = "?"
    return {OPAQUE_KEY: type(value).__name__, "repr": text}


def shippable(value, depth: int = 0):
    """``value`` made of what ``torch.load(weights_only=True)`` accepts; other objects become markers."""
    import torch

    if depth > MAX_DEPTH:
        return _opaque(value)
    if torch.is_tensor(value):
        try:
            if value.numel() > MAX_ELEMENTS or value.layout != torch.strided:
                return _opaque(value)
            return value.detach().cpu().as_subclass(torch.Tensor).clone()
        except Exception:
            return _opaque(value)
    if type(value) in _PLAIN:
        return value
    for plain in (bool, int, float, str):  # subclasses of plain types: IntEnum, numpy.float64, ...
        if isinstance(value, plain):
            return plain(value)
    if type(value) in (list, tuple, torch.Size):
        items = [shippable(item, depth + 1) for item in value]
        return items if type(value) is list else tuple(items)
    if type(value) is dict and all(type(key) in (str, int) for key in value):
        return {key: shippable(item, depth + 1) for key, item in value.items()}
    return _opaque(value)


def _names(code) -> set:
    """The global and attribute names a code object and the code nested in it use."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if hasattr(constant, "co_names"):
            names |= _names(constant)
    return names


def _parts(obj, names: set) -> list:
    """What ``obj`` is made of, one level: a class's bases and methods; a function's globals that
    its code names, closure cells and defaults; a module's attributes named by the code."""
    found: list = []
    if isinstance(obj, type):
        found += [base for base in obj.__mro__[1:] if base is not object]
        for value in vars(obj).values():
            found += [getattr(value, attribute, None) for attribute in ("__func__", "fget")] + [value]
    elif type(obj).__name__ == "module":
        found += [getattr(obj, name, None) for name in names]
    elif hasattr(obj, "__code__"):
        space = getattr(obj, "__globals__", {})
        found += [space[name] for name in _names(obj.__code__) if name in space]
        found += [cell.cell_contents for cell in (obj.__closure__ or ()) if _filled(cell)]
        found += list(obj.__defaults__ or ()) + list((obj.__kwdefaults__ or {}).values())
    elif hasattr(obj, "__func__"):  # a bound method
        found.append(obj.__func__)
    elif hasattr(obj, "func") and hasattr(obj, "args"):  # functools.partial
        found += [obj.func, *obj.args]
    return [item for item in found if item is not None]


def _filled(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018 (an empty cell raises)
    except ValueError:
        return False
    return True


def _learners(obj) -> bool:
    """Code the notebook defined (walked into); the libraries' own code is not."""
    module = getattr(obj, "__module__", None) or ""
    return not (module == "builtins" or module.startswith(("torch", "utils", "numpy", "functools")))


def forbidden_uses(answer, forbidden: dict) -> list:
    """The names in ``forbidden`` (name -> the objects it may be) that ``answer`` is, subclasses,
    wraps or names in its code, through the notebook's own helpers; and anything of ``utils.course.checks``."""
    found: list = []
    seen: set = set()
    stack = [(answer, set(), 0)]
    while stack:
        obj, names, depth = stack.pop()
        if id(obj) in seen or depth > 8:
            continue
        seen.add(id(obj))
        for name, candidates in forbidden.items():
            if any(obj is candidate or _same(obj, candidate) for candidate in candidates) and name not in found:
                found.append(name)
        module = getattr(obj, "__module__", None) or ""
        if module.startswith("utils.course.checks") and hasattr(obj, "__qualname__"):
            label = f"{module}.{obj.__qualname__}"
            found += [label] if label not in found else []
        if depth == 0 or _learners(obj) or type(obj).__name__ == "module":
            inner = _names(obj.__code__) if hasattr(obj, "__code__") else names
            stack += [(part, inner, depth + 1) for part in _parts(obj, inner)
                      if type(part).__name__ != "module" or _leads_to(part.__name__, forbidden)]
    return found


def _leads_to(module: str, forbidden: dict) -> bool:
    """Whether a module the code names may hold what is forbidden (the course's, or named)."""
    return module.startswith("utils") or any(name.startswith(f"{module}.") for name in forbidden)


def _resolve(dotted: str, saved) -> list:
    """The objects ``dotted`` names: the fresh import's, and the kernel's own copy if it has one."""
    module_name, _, attribute = dotted.rpartition(".")
    found = []
    for modules in (sys.modules, saved):
        try:
            module = modules[module_name] if module_name in modules else (
                importlib.import_module(module_name) if modules is sys.modules else None)
        except Exception:
            module = None
        if module is not None and hasattr(module, attribute):
            found.append(getattr(module, attribute))
    return found


def _needed(call) -> set:
    """The global names ``call`` uses, through the helpers of its own module (transitively)."""
    space = getattr(call, "__globals__", {})
    names: set = set()
    stack = [call]
    while stack:
        code = getattr(stack.pop(), "__code__", None)
        if code is None:
            continue
        for name in _names(code) - names:
            names.add(name)
            helper = space.get(name)
            if getattr(helper, "__globals__", None) is space:
                stack.append(helper)
    return names


def _sealed(core, chapter_exercises, exercise):
    """``exercise`` without its reference, and the fresh checks without the reference
    implementations they define (those the exercise's ``call`` needs stay): the learner's code,
    walking the stack or ``sys.modules`` while it runs, finds none. What the checks import from
    the library stays: the notebook can import it too, and ``forbidden`` covers it."""
    import dataclasses

    keep = _needed(exercise.call)
    references = [id(other.reference) for other in chapter_exercises]
    for name, module in list(sys.modules.items()):
        if name.startswith("utils.course.checks.ch"):
            for attribute, value in list(vars(module).items()):
                if (id(value) in references and attribute not in keep
                        and getattr(value, "__module__", None) == name):
                    delattr(module, attribute)
    core._REGISTRY.clear()
    return dataclasses.replace(exercise, reference=None)


def collect(params: dict) -> None:
    """Run one exercise's cases on what the notebook defined; ``torch.save`` the outcomes.

    The cases' inputs come from the grader (``params["inputs_path"]``, plain tensors and
    numbers); the expected results never enter the kernel.
    """
    import copy

    import torch

    try:
        from IPython import get_ipython

        shell = get_ipython()
        user_ns = shell.user_ns if shell is not None else vars(sys.modules["__main__"])
    except ImportError:
        user_ns = vars(sys.modules["__main__"])
    saved = _fresh_utils(params["package_dir"])
    try:
        core = importlib.import_module("utils.course.checks.core")
        chapter_exercises = core.load_chapter(params["chapter"])
        exercise = next(ex for ex in chapter_exercises if ex.id == params["exercise"])
        record = {"exercise": exercise.id, "defined": exercise.target in user_ns, "outcomes": [],
                  "tampering": _tampering(saved, user_ns, core, exercise), "forbidden": []}
        inputs = torch.load(params["inputs_path"], weights_only=True)
        forbidden = {name: _resolve(name, saved) for name in exercise.forbidden}
        exercise = _sealed(core, chapter_exercises, exercise)
        # saved before the learner's code runs: a case that never ends leaves this much behind
        torch.save(record, params["result_path"])
        if record["defined"]:
            answer = user_ns[exercise.target]
            try:
                record["forbidden"] = forbidden_uses(answer, forbidden)
            except Exception as error:  # an object too odd to inspect: judged on its results
                record["tampering"].append(f"the answer could not be inspected ({_describe(error)})")
            for case, args in zip(exercise.cases, inputs, strict=True):
                case = core.Case(case.label, lambda args=args: copy.deepcopy(args), case.hidden)
                try:
                    outcome = core.run_case(exercise, answer, case)
                    shipped = {"status": str(outcome.status), "value": shippable(outcome.value),
                               "error": str(outcome.error)}
                except KeyboardInterrupt:  # the grader's time limit (or the learner's own raise)
                    record["outcomes"].append({"status": "error", "value": None,
                                               "error": "KeyboardInterrupt", "interrupted": True})
                    break
                except BaseException as error:  # SystemExit and friends from the learner's code
                    shipped = {"status": "error", "value": None, "error": _describe(error)}
                record["outcomes"].append(shipped)
                torch.save(record, params["result_path"])
        torch.save(record, params["result_path"])
    finally:
        _restore(saved)


class OutputLimitExceeded(Exception):
    """Raised (once per cell) by print() when a cell's output passes the grader's limit."""


def _cap_output(limit: int) -> None:
    """Make ``sys.stdout``/``sys.stderr`` raise :class:`OutputLimitExceeded` past ``limit`` characters
    in one cell, and drop the rest, so a cell printing 500 MB never ships it to the grader."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        state = {"cell": None, "size": 0, "raised": False}

        def write(text, original=stream.write, stream=stream, state=state):
            try:
                cell = stream.parent_header.get("msg_id")
            except Exception:
                cell = None
            if cell != state["cell"]:
                state.update(cell=cell, size=0, raised=False)
            state["size"] += len(text) if isinstance(text, str) else 0
            if state["size"] <= limit:
                return original(text)
            if not state["raised"]:
                state["raised"] = True
                raise OutputLimitExceeded(f"this cell printed more than {limit // 2**20} MB; "
                                          "the grader stopped its output")
            return len(text)

        stream.write = write


def _cap_address_space(memory_bytes: int) -> None:
    """Cap the kernel's address space at what it maps now plus ``memory_bytes``.

    Unlike the data-segment cap, this counts every mapping, shared ones included (a shared
    anonymous ``mmap``, ``/dev/shm``); measured after the imports, it leaves torch's
    libraries (about 3 GB of address space) out of the learner's allowance.
    """
    import resource

    with open("/proc/self/statm") as file:  # sizes in pages; the first is the address space
        mapped = int(file.read().split()[0]) * resource.getpagesize()
    limit = mapped + memory_bytes
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def prepare(params: dict) -> None:
    """Import the heavy libraries the notebook imports; cap each cell's output and the memory."""
    for module in params["warm"]:
        try:
            importlib.import_module(module)
        except Exception:  # the student's own import will report it
            pass
    _cap_output(params["max_output_chars"])
    if params.get("memory_bytes", 0) > 0 and sys.platform.startswith("linux"):
        _cap_address_space(params["memory_bytes"])


def kernel_source(function: str, params: dict) -> str:
    """The code of a cell that runs ``function(params)`` (from this file) in a private namespace."""
    from pathlib import Path

    source = Path(__file__).read_text(encoding="utf-8")
    program = f"{source}\n{function}({params!r})\n"
    return f"exec(compile({program!r}, '<attn grade>', 'exec'), {{'__name__': '__attn_grade__'}})"
