"""Crash-test driver for the dataset store: appends and stages derives in a loop until the test SIGKILLs it.

Prints ``started`` once the store is open, then one JSON line per committed version, so the test
knows what must survive. usage: datastore_crash_helper.py DB_PATH SEED
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from reference_impl.datastore import DataStore, dumps

OWNER = "alice"


def main(path: Path, seed: int) -> None:
    rng = random.Random(seed)
    store = DataStore(path)
    print("started", flush=True)
    dataset = store.create(OWNER, "crash", None, None, ["k"])
    n = 0
    while True:
        batch = [dumps({"k": rng.randrange(10), "text": "x" * rng.randrange(200), "n": n + i}) for i in range(rng.randrange(1, 400))]
        n += len(batch)
        version, count = store.append(OWNER, dataset.id, batch)
        print(json.dumps({"dataset": dataset.id, "version": version, "record_count": count}), flush=True)
        if rng.random() < 0.3:
            source = store.version(OWNER, dataset.id, None)
            staging = store.stage(OWNER, source, None if rng.random() < 0.5 else f"derived-{n}")
            for _index, text in store.iter_records(source):
                staging.write([text])
                if rng.random() < 0.01:
                    break
            ref = staging.commit([{"op": "strip", "field": "text"}])
            print(json.dumps({"dataset": ref.dataset_id, "version": ref.version, "record_count": staging.count}), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
