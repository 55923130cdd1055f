"""Shared helpers for the sensing tests (CPython only).

`instrumented()` loads the sensing modules from their source with every arithmetic
result on the per-sample path wrapped in a check that it is an int with |x| < 2**30
(the ESP32 small-int range) — intermediate products included, not only stored values.
"""

import ast
import sys
import types

from conftest import FIRMWARE

SMALL = 1 << 30

# (module, function qualname) pairs on the per-sample path
SAMPLE_PATH = {
    "gasguard.sensing": {"log2_q12", "exp2_q12", "interp", "pct_lel_x10",
                         "MethaneMOS.ppm_x10", "MethaneMOS.set_environment",
                         "ElectrochemCO.ppm_x10", "ElectrochemCO.set_environment",
                         "ElectrochemCO._update", "_clip", "Filter.update", "Filter.reset",
                         "Channel.sample",
                         "Channel._debounce", "Channel._set_bits", "SupplyMonitor.sample"},
    "gasguard.sensors": set(),
    "gasguard.calibration": set(),
    "gasguard.cal_math": set(),
}
ORDER = ["gasguard.sensing", "gasguard.sensors", "gasguard.cal_math", "gasguard.calibration"]


class RangeViolation(AssertionError):
    pass


def _chk(v):
    if isinstance(v, float):
        raise RangeViolation("float %r on the sample path" % v)
    if isinstance(v, int) and not isinstance(v, bool) and not -SMALL < v < SMALL:
        raise RangeViolation("int %d outside ±2**30 on the sample path" % v)
    return v


class _Wrap(ast.NodeTransformer):
    def visit_BinOp(self, node):
        self.generic_visit(node)
        return ast.copy_location(
            ast.Call(func=ast.Name("_chk", ast.Load()), args=[node], keywords=[]), node)

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.USub):
            return ast.copy_location(
                ast.Call(func=ast.Name("_chk", ast.Load()), args=[node], keywords=[]), node)
        return node

    def visit_AugAssign(self, node):
        self.generic_visit(node)
        tgt = ast.parse(ast.unparse(node.target), mode="eval").body
        check = ast.Expr(ast.Call(func=ast.Name("_chk", ast.Load()), args=[tgt], keywords=[]))
        return [node, ast.copy_location(check, node)]


def _instrument_tree(tree, wanted):
    def walk(body, prefix):
        for node in body:
            if isinstance(node, ast.ClassDef):
                walk(node.body, prefix + node.name + ".")
            elif isinstance(node, ast.FunctionDef) and prefix + node.name in wanted:
                _Wrap().visit(node)
    walk(tree.body, "")
    ast.fix_missing_locations(tree)
    return tree


def instrumented():
    """Fresh, instrumented copies of the sensing modules, as a dict name -> module.

    They are put into sys.modules and on the package while loading (so they import each
    other, also as `from gasguard import sensing`) and the previous modules are restored
    afterwards."""
    import gasguard

    saved = {n: sys.modules.get(n) for n in ORDER}
    attrs = {n: getattr(gasguard, n.split(".")[1], None) for n in ORDER}
    mods = {}
    try:
        for name in ORDER:
            path = FIRMWARE / (name.replace(".", "/") + ".py")
            tree = _instrument_tree(ast.parse(path.read_text(), str(path)), SAMPLE_PATH[name])
            mod = types.ModuleType(name)
            mod.__file__ = str(path)
            mod._chk = _chk
            sys.modules[name] = mod
            setattr(gasguard, name.split(".")[1], mod)
            exec(compile(tree, str(path), "exec"), mod.__dict__)
            mods[name.split(".")[1]] = mod
        # calibration holds the cal_math it loads (calibration._math()): this one
        mods["calibration"]._M[:] = [mods["cal_math"]]
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m
        for n, m in attrs.items():
            short = n.split(".")[1]
            if m is not None:
                setattr(gasguard, short, m)
            elif hasattr(gasguard, short):
                delattr(gasguard, short)
    return mods
