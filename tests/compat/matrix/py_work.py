# py_work.py - the workload of the BCC matrix's Python cases (pythongc):
# Debian's python3.11 has USDT probes (python:gc__start, gc__done, with
# semaphores). Prints "ready", waits for a line on stdin (the tool
# attaches first), runs N explicit collections of generations 0, 1, 2 in
# turn between allocations (the same program makes the same collections
# on every run), prints "done".
import gc
import sys

n = int(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
keep = []
for i in range(n):
    keep.append([{"i": i, "j": j} for j in range(100)])
    gc.collect(i % 3)
print("done", flush=True)
