"""Reads a collection back with pymongo (Debian's python3-pymongo) as RawBSONDocument: the exact bytes
the server stores, independent of this project's BSON code.

Usage: /usr/bin/python3 test/support/pymongo-raw.py MONGODB_URI DATABASE COLLECTION
Prints one JSON object: {"docs": [hex of each document's raw bytes, in natural order],
"collections": {db: [names]} for the database and admin}; exits 3 when pymongo is missing.
"""
import json
import sys

try:
    import pymongo
    from bson.raw_bson import RawBSONDocument
except ImportError as exc:
    print(json.dumps({"missing": str(exc)}))
    sys.exit(3)


def main():
    uri, dbname, collname = sys.argv[1], sys.argv[2], sys.argv[3]
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000, document_class=RawBSONDocument)
    docs = [doc.raw.hex() for doc in client[dbname][collname].find()]
    names = {name: sorted(client[name].list_collection_names()) for name in (dbname, "admin")}
    print(json.dumps({"docs": docs, "collections": names}))


main()
