#!/usr/bin/python3
"""What a user would write instead: stream the tarball, decode every document with python3-bson
(C extension) and filter. Prints one JSON line like bench/child.ts."""
import datetime
import json
import resource
import sys
import tarfile
import time

import bson

started = time.monotonic()
low = datetime.datetime(2018, 1, 1)
high = datetime.datetime(2020, 1, 1)
matched = 0
with tarfile.open(sys.argv[1], "r|gz") as archive:
    for member in archive:
        if not member.name.endswith("artworks.bson"):
            continue
        for doc in bson.decode_file_iter(archive.extractfile(member)):
            if doc.get("published") is True and low <= doc.get("created_at", low - datetime.timedelta(1)) < high \
                    and doc.get("dimensions", {}).get("height", 0) > 30:
                matched += 1
ms = (time.monotonic() - started) * 1000
print(json.dumps({"ms": ms, "maxRssMb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "matched": matched}))
