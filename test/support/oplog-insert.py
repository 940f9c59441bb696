"""Writes oplog entries into a test server's local.oplog.rs with pymongo (Debian's python3-pymongo),
encoded by python3-bson: a stand-in for the oplog a replica set writes, for servers that let a
client write there (the in-repo test server; mongod refuses it).

Usage: /usr/bin/python3 test/support/oplog-insert.py MONGODB_URI < entries.json (canonical Extended JSON array)
"""
import json
import sys

import pymongo
from bson.json_util import CANONICAL_JSON_OPTIONS, loads


def main():
    docs = [loads(json.dumps(doc), json_options=CANONICAL_JSON_OPTIONS) for doc in json.load(sys.stdin)]
    client = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=5000, retryWrites=False)
    # The insert command, not insert_many: entries hold "$v" and "$set" keys, which insert_many refuses.
    for start in range(0, len(docs), 500):
        client["local"].command({"insert": "oplog.rs", "documents": docs[start:start + 500], "ordered": True})
    print(json.dumps({"inserted": len(docs)}))


main()
