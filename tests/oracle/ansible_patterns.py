"""Oracle: print the hosts Ansible selects for host patterns, as JSON.

Run with a Python that has ansible-core. Input (stdin, JSON): {"sources": [...],
"cases": [[pattern, limit-or-null], ...]}. Output: one list of host names per case, or
{"error": message} where Ansible refuses the pattern. This calls the same inventory code
as ``ansible -i SRC PATTERN --limit LIMIT --list-hosts`` in one process, because starting
``ansible`` once per pattern costs about a second each.
"""

import json
import sys

from ansible.errors import AnsibleError
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader


def main() -> None:
    request = json.load(sys.stdin)
    inventory = InventoryManager(loader=DataLoader(), sources=request["sources"])
    results = []
    for pattern, limit in request["cases"]:
        try:
            inventory.subset(limit)
            hosts = inventory.list_hosts(pattern)
            results.append([h.name if hasattr(h, "name") else h for h in hosts])
        except AnsibleError as exc:
            results.append({"error": str(exc)})
        finally:
            inventory.subset(None)
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
