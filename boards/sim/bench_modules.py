# Heap each module adds when imported in the given order: run by gasguard_tools.bench_heap
# (`make bench`, section *heap*) on the ESP32-like interpreter, a device's .mpy tree on the
# path.
#
#     micropython -X heapsize=2m boards/sim/bench_modules.py MODULE_LIST_FILE
#
# MODULE_LIST_FILE: module names separated by white space. Prints `module bytes` lines.
# (A comment, not a docstring: a docstring moves the heap figures printed here.)

import gc, sys
gc.collect()
prev = gc.mem_alloc()
for m in open(sys.argv[1]).read().split():
    __import__(m)
    gc.collect()
    a = gc.mem_alloc()
    print(m, a - prev)
    prev = a
