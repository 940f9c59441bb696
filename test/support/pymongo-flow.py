#!/usr/bin/python3
"""An outside script, as an operator would write one: start the sandbox, fill staging and
production with pymongo, write a mongodump-style backup with python's bson, drive the CLI
through extract, plan, push, verify and rollback, and read the results back with pymongo.

Prints one JSON line with what it saw; exits non-zero on the first surprise.
Run with Debian's python3 (python3-pymongo, python3-bson): /usr/bin/python3 pymongo-flow.py REPO
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import bson
from bson import ObjectId
from bson.int64 import Int64
from bson.decimal128 import Decimal128
from pymongo import MongoClient

repo = os.path.abspath(sys.argv[1])
work = tempfile.mkdtemp(prefix="gr-pymongo-")
seen = {}


def check(cond, what):
    if not cond:
        raise SystemExit("pymongo-flow: " + what)


sandbox = subprocess.Popen(
    ["npm", "run", "--silent", "sandbox"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    text=True, start_new_session=True,
)
try:
    info = json.loads(sandbox.stdout.readline())
    seen["mongo"] = info["mongo"]
    check(info["s3"]["endpoint"].startswith("http://127.0.0.1:"), "sandbox S3 endpoint")

    # The backup: a mongodump folder written with python's bson (an independent BSON encoder).
    partner = ObjectId()
    other = ObjectId()
    artworks = [
        {"_id": ObjectId(), "title": "Work %d" % i, "partner_id": partner if i % 2 == 0 else other,
         "price": Decimal128("1234.50"), "inventory": Int64(10 ** 12 + i), "tags": ["a", "b"]}
        for i in range(40)
    ]
    sale_artworks = [{"_id": ObjectId(), "artwork_id": a["_id"], "lot": i} for i, a in enumerate(artworks)]
    dump = os.path.join(work, "backup", "dump", "gravity")
    os.makedirs(dump)
    for name, docs in (("artworks", artworks), ("sale_artworks", sale_artworks)):
        with open(os.path.join(dump, name + ".bson"), "wb") as f:
            for d in docs:
                f.write(bson.BSON.encode(d))
        with open(os.path.join(dump, name + ".metadata.json"), "w") as f:
            json.dump({"indexes": [{"v": {"$numberInt": "2"}, "key": {"_id": {"$numberInt": "1"}}, "name": "_id_"}],
                       "collectionName": name, "type": "collection"}, f)
    with open(os.path.join(work, "gravity-restore.config.json"), "w") as f:
        json.dump({"relations": [{"from": "artworks", "to": "sale_artworks", "foreignField": "artwork_id"}]}, f)

    # Staging and production after the incident: the partner's artworks (and their sale_artworks) are gone.
    lost = [a for a in artworks if a["partner_id"] == partner]
    lost_ids = set(a["_id"] for a in lost)
    for uri in (info["staging"], info["production"]):
        db = MongoClient(uri).get_database()
        db.artworks.insert_many([a for a in artworks if a["_id"] not in lost_ids])
        db.sale_artworks.insert_many([s for s in sale_artworks if s["artwork_id"] not in lost_ids])

    env = dict(os.environ)
    env.update({"GRAVITY_RESTORE_STAGING_URI": info["staging"], "GRAVITY_RESTORE_PRODUCTION_URI": info["production"], "CI": "true"})

    def cli(*args, ok=True):
        run = subprocess.run(["node", os.path.join(repo, "bin", "run.js")] + list(args) + ["--json"], cwd=work, env=env,
                             capture_output=True, text=True)
        if ok and run.returncode != 0:
            raise SystemExit("pymongo-flow: %s failed (%d): %s %s" % (args[0], run.returncode, run.stdout, run.stderr))
        return run.returncode, json.loads(run.stdout)

    query = '{"partner_id": ObjectId("%s")}' % partner
    _, extracted = cli("extract", "--from", os.path.join(work, "backup"), "--collection", "artworks", "--query", query, "--follow", "--out", "set")
    check(extracted["counts"] == {"artworks": 20, "sale_artworks": 20}, "extract counts %r" % extracted["counts"])
    _, plan = cli("plan", "set", "--to", "staging")
    check(plan["collections"]["artworks"]["insert"] == 20, "plan inserts %r" % plan["collections"])

    # Production before staging is verified: refused, nothing written.
    code, refused = cli("push", "set", "--to", "production", "--confirm", "gravity", ok=False)
    check(code != 0 and "error" in refused, "production push without staging should be refused")
    prod = MongoClient(info["production"]).get_database()
    check(prod.artworks.count_documents({"partner_id": partner}) == 0, "refused push wrote to production")

    cli("push", "set", "--to", "staging", "--yes")
    _, verified = cli("verify", "set", "--to", "staging")
    check(verified["ok"] is True, "staging verify")
    _, pushed = cli("push", "set", "--to", "production", "--confirm", "gravity")
    seen["pushed"] = pushed["collections"]
    _, verified = cli("verify", "set", "--to", "production")
    check(verified["ok"] is True, "production verify")

    # Read back with pymongo: every lost document is there, equal to the backup, types intact.
    for a in lost:
        got = prod.artworks.find_one({"_id": a["_id"]})
        check(got == a, "artwork %s differs after push" % a["_id"])
        check(isinstance(got["inventory"], Int64) and isinstance(got["price"], Decimal128), "types lost")
    check(prod.sale_artworks.count_documents({"artwork_id": {"$in": list(lost_ids)}}) == 20, "sale_artworks after push")

    # Someone edits one restored artwork; rollback must leave that one alone.
    edited = lost[0]["_id"]
    prod.artworks.update_one({"_id": edited}, {"$set": {"title": "edited after the push"}})
    _, rolled = cli("rollback", "set", "--to", "production", "--confirm", "gravity")
    seen["rollback"] = rolled["collections"]
    check(prod.artworks.count_documents({"partner_id": partner}) == 1, "rollback left %d" % prod.artworks.count_documents({"partner_id": partner}))
    check(prod.artworks.find_one({"_id": edited})["title"] == "edited after the push", "rollback touched an edited document")
    check(prod.sale_artworks.count_documents({"artwork_id": {"$in": list(lost_ids)}}) == 0, "sale_artworks after rollback")
    check(prod.artworks.count_documents({}) == 21, "untouched artworks disturbed")
    print(json.dumps({"ok": True, **seen}))
finally:
    os.killpg(sandbox.pid, signal.SIGTERM)
    sandbox.wait(timeout=30)
    shutil.rmtree(work, ignore_errors=True)
