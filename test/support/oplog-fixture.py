"""Writes a base backup and a dump of local.oplog.rs with an independent BSON implementation
(Debian's python3-bson), plus the exact bytes each document must have at TIME.

The entries are in mongod 6.0+'s format as ../shared/OPLOG.md describes it (section given per entry);
the expected states are written out by hand from the rules cited there, never computed by the
replayer under test.

usage: oplog-fixture.py OUT_DIR   prints {"at": ..., "base": ..., "expected": {coll: [hex, ...]}}
"""
import json
import os
import sys
import uuid

import bson
from bson import SON, Int64, ObjectId, Timestamp, Decimal128
from bson.binary import Binary, UUID_SUBTYPE

out = sys.argv[1]
BASE = 1795010400  # 2026-11-18T14:00:00Z, the backup's name
DB = "shop"
UI_CUSTOMERS = Binary(uuid.UUID("0cc57b4e-e61c-4151-81f3-14b06caed22e").bytes, UUID_SUBTYPE)
UI_ORDERS = Binary(uuid.UUID("1dd68c5f-f72d-4262-9204-25c17dbfe33f").bytes, UUID_SUBTYPE)
O1 = ObjectId("65f0c0ffee0000000000abcd")
O2 = ObjectId("65f0c0ffee0000000000abce")


def enc(doc):
    return bson.encode(doc)


def write_bson(path, docs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        for d in docs:
            f.write(enc(d))


def meta(path, name):
    with open(path, "w") as f:
        json.dump({"options": {}, "indexes": [{"v": 2, "key": {"_id": 1}, "name": "_id_"}], "uuid": "", "collectionName": name, "type": "collection"}, f)


# The base backup, a mongodump folder named by its time (read as UTC).
backup = os.path.join(out, "backups", "shop-2026-11-18T14-00-00Z", DB)
customers = [
    SON([("_id", 1), ("name", "Ann"), ("10", 8), ("2", -8), ("tags", ["a", "b", "c"]), ("addr", SON([("city", "X"), ("zip", "1")]))]),
    SON([("_id", 2), ("name", "Bob"), ("phone", "555")]),
    SON([("_id", 3), ("name", "Cy")]),
    SON([("_id", 4), ("name", "Untouched"), ("balance", Decimal128("10.50")), ("n", Int64(7))]),
]
orders = [SON([("_id", O1), ("customer", 2), ("total", Decimal128("10.50")), ("qty", Int64(2))])]
write_bson(os.path.join(backup, "customers.bson"), customers)
meta(os.path.join(backup, "customers.metadata.json"), "customers")
write_bson(os.path.join(backup, "orders.bson"), orders)
meta(os.path.join(backup, "orders.metadata.json"), "orders")

LSID1 = SON([("id", Binary(uuid.UUID("2ee79d60-0000-4000-8000-000000000001").bytes, UUID_SUBTYPE)), ("uid", Binary(b"\x01" * 32, 0))])
LSID2 = SON([("id", Binary(uuid.UUID("2ee79d60-0000-4000-8000-000000000002").bytes, UUID_SUBTYPE)), ("uid", Binary(b"\x02" * 32, 0))])
NULL_OPTIME = SON([("ts", Timestamp(0, 0)), ("t", Int64(-1))])


def entry(t, i, op, ns, o, o2=None, ui=None, **extra):
    # Field order of a 6.0+ entry: OPLOG.md §1 examples (lsid/txnNumber first when present).
    d = SON()
    for k in ("lsid", "txnNumber", "stmtId"):
        if k in extra:
            d[k] = extra.pop(k)
    d["op"] = op
    d["ns"] = ns
    if ui is not None:
        d["ui"] = ui
    d["o"] = o
    if o2 is not None:
        d["o2"] = o2
    d["ts"] = Timestamp(BASE + t, i)
    d["t"] = Int64(4)
    d["v"] = Int64(2)
    d["wall"] = __import__("datetime").datetime.utcfromtimestamp(BASE + t)
    for k, v in extra.items():
        d[k] = v
    return d


C = DB + ".customers"
O = DB + ".orders"
AT = (BASE + 20, 2)
entries = [
    # A periodic no-op before the base point: the oplog covers it (manual, replica-set oplog: idle no-ops every 10 s).
    entry(-3, 1, "n", "", SON([("msg", "periodic noop")])),
    # §2.3: u keeps position, i moves an existing field (the integer-like "10") to the end.
    entry(5, 1, "u", C, SON([("$v", 2), ("diff", SON([("u", SON([("name", "Anna")])), ("i", SON([("10", 9)]))]))]), SON([("_id", 1)]), UI_CUSTOMERS),
    # §2.3 array diff: l truncates.
    entry(6, 1, "u", C, SON([("$v", 2), ("diff", SON([("stags", SON([("a", True), ("l", 2)]))]))]), SON([("_id", 1)]), UI_CUSTOMERS),
    # §2.3 sub-diff: u in place, i appended inside the sub-document.
    entry(7, 1, "u", C, SON([("$v", 2), ("diff", SON([("saddr", SON([("u", SON([("zip", "2")])), ("i", SON([("5", True)]))]))]))]), SON([("_id", 1)]), UI_CUSTOMERS),
    # A delete and a re-insert of the same _id (§1 examples; inserts carry o2 from 5.3).
    entry(8, 1, "d", C, SON([("_id", 2)]), None, UI_CUSTOMERS),
    entry(9, 1, "i", C, SON([("_id", 2), ("name", "Bob2")]), SON([("_id", 2)]), UI_CUSTOMERS),
    # §4 trap 2: an image no-op with the user namespace and a whole document: not a write.
    entry(10, 1, "n", C, SON([("_id", 3), ("name", "EVIL")])),
    # §3.1: an unprepared transaction in one applyOps entry across two collections, applied at this entry.
    entry(11, 1, "c", "admin.$cmd", SON([("applyOps", [
        SON([("op", "i"), ("ns", O), ("ui", UI_ORDERS), ("o", SON([("_id", O2), ("customer", 3), ("total", Decimal128("1.00"))])), ("o2", SON([("_id", O2)]))]),
        SON([("op", "u"), ("ns", C), ("ui", UI_CUSTOMERS), ("o", SON([("$v", 2), ("diff", SON([("i", SON([("vip", True)]))]))])), ("o2", SON([("_id", 3)]))]),
    ])]), lsid=LSID1, txnNumber=Int64(1), prevOpTime=NULL_OPTIME),
    # §3.1: a prepared transaction, then aborted: never applied.
    entry(12, 1, "c", "admin.$cmd", SON([("applyOps", [
        SON([("op", "u"), ("ns", C), ("ui", UI_CUSTOMERS), ("o", SON([("$v", 2), ("diff", SON([("u", SON([("name", "PREPARED")]))]))])), ("o2", SON([("_id", 1)]))]),
    ]), ("prepare", True)]), lsid=LSID2, txnNumber=Int64(1), prevOpTime=NULL_OPTIME),
    entry(13, 1, "c", "admin.$cmd", SON([("abortTransaction", 1)]), lsid=LSID2, txnNumber=Int64(1), prevOpTime=SON([("ts", Timestamp(BASE + 12, 1)), ("t", Int64(4))])),
    # §3.1: a 6.1+ batched delete: applyOps of d entries, no lsid.
    entry(14, 1, "c", "admin.$cmd", SON([("applyOps", [SON([("op", "d"), ("ns", O), ("ui", UI_ORDERS), ("o", SON([("_id", O1)]))])])])),
    # §2.1: a replacement (o has _id), applied after the transaction's $v:2 insert.
    entry(15, 1, "u", C, SON([("_id", 3), ("z", 1), ("name", "Cy3")]), SON([("_id", 3)]), UI_CUSTOMERS),
    # Exactly at TIME: not applied ("at TIME" = every entry with ts < TIME).
    entry(20, 2, "u", C, SON([("$v", 2), ("diff", SON([("u", SON([("name", "LATE")]))]))]), SON([("_id", 2)]), UI_CUSTOMERS),
    entry(25, 1, "n", "", SON([("msg", "periodic noop")])),
]
write_bson(os.path.join(out, "oplog", "local", "oplog.rs.bson"), entries)

# The same base as `mongodump --oplog --gzip` writes it: gzipped collections, and its own oplog (the
# entries of its capture window, here up to base+9) gzipped in a file still named oplog.bson (OPLOG.md §8, trap 16).
import gzip
dump = os.path.join(out, "dump-with-oplog")
os.makedirs(os.path.join(dump, DB), exist_ok=True)
for name, docs in (("customers", customers), ("orders", orders)):
    with gzip.open(os.path.join(dump, DB, name + ".bson.gz"), "wb") as f:
        for d in docs:
            f.write(enc(d))
    meta(os.path.join(dump, DB, name + ".metadata.json"), name)
with gzip.open(os.path.join(dump, "oplog.bson"), "wb") as f:
    for e in entries:
        if e["ts"].time <= BASE + 9:
            f.write(enc(e))

# The same oplog dumped in two pieces that do not meet: entries from base+10 to base+14 are in neither.
write_bson(os.path.join(out, "oplog-gap", "part1", "local", "oplog.rs.bson"), [e for e in entries if e["ts"].time < BASE + 10])
write_bson(os.path.join(out, "oplog-gap", "part2", "local", "oplog.rs.bson"), [e for e in entries if e["ts"].time >= BASE + 15])

# A command whose effect on documents has no oplog entries (OPLOG.md §3.3: emptycapped deletes every
# document of the collection), on a collection that matters: the replay must refuse it.
with_command = sorted(entries + [entry(12, 2, "c", DB + ".$cmd", SON([("emptycapped", "customers")]))], key=lambda e: (e["ts"].time, e["ts"].inc))
write_bson(os.path.join(out, "oplog-command", "local", "oplog.rs.bson"), with_command)

expected = {
    "customers": [
        # untouched documents first, in backup order
        SON([("_id", 4), ("name", "Untouched"), ("balance", Decimal128("10.50")), ("n", Int64(7))]),
        SON([("_id", 1), ("name", "Anna"), ("2", -8), ("tags", ["a", "b"]), ("addr", SON([("city", "X"), ("zip", "2"), ("5", True)])), ("10", 9)]),
        SON([("_id", 2), ("name", "Bob2")]),
        SON([("_id", 3), ("z", 1), ("name", "Cy3")]),
    ],
    "orders": [SON([("_id", O2), ("customer", 3), ("total", Decimal128("1.00"))])],
}
print(json.dumps({
    "at": {"t": AT[0], "i": AT[1]},
    "base": BASE,
    "expected": {k: [enc(d).hex() for d in v] for k, v in expected.items()},
    "backup": {"customers": [enc(d).hex() for d in customers], "orders": [enc(d).hex() for d in orders]},
}))
