# Runs before main.py. Keep it minimal: the app starts from main.py so that a crash
# there leaves the REPL reachable for maintenance.
import gc

gc.collect()
