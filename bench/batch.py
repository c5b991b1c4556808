"""Writes the body of a batch PATCH of N operations (ids FIRST.. FIRST+N-1) that changes each
operation's device location, so every item is a real change with its history entry."""
import json, sys
first, count, tag = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
json.dump([{"id": first + i, "location": f"Site {tag}", "notes": f"batch {tag}"} for i in range(count)], sys.stdout)
