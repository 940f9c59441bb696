"""Baselines and checks for the target benchmark: what a short pymongo script does with the same raw documents.

Usage: /usr/bin/python3 bench/pymongo-target.py insert|scan|check MONGODB_URI DATABASE COLLECTION FILE.bson
insert: insert_many of the raw documents (RawBSONDocument, batches of 1,000, unordered).
scan:   find({_id: {$in: batch}}, batch_size=1000) for every batch of 1,000 _ids, documents read raw.
check:  as scan, and every document must come back once with the file's bytes, and the collection
        must hold no other document (an independent client's read-back of what a push wrote).
Prints one JSON object: {"seconds": ..., "documents": ...} (check adds "unequal": documents missing or with other
bytes, and "total": documents the collection holds).
"""
import json
import sys
import time

import pymongo
from bson import decode_file_iter
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

BATCH = 1000


def batches(path):
    options = CodecOptions(document_class=RawBSONDocument)
    batch = []
    with open(path, "rb") as f:
        for doc in decode_file_iter(f, codec_options=options):
            batch.append(doc)
            if len(batch) == BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def main():
    mode, uri, dbname, collname, path = sys.argv[1:6]
    client = pymongo.MongoClient(uri, document_class=RawBSONDocument)
    coll = client[dbname][collname]
    started = time.perf_counter()
    count = unequal = 0
    for batch in batches(path):
        if mode == "insert":
            coll.insert_many(batch, ordered=False)
        else:
            ids = [doc["_id"] for doc in batch]
            # One reply per batch, as the CLI asks (the default first batch is 101 documents, then getMore).
            found = list(coll.find({"_id": {"$in": ids}}, batch_size=BATCH))
            if mode == "check":
                # A document counts only when the server gives back exactly the file's bytes for its _id.
                held = {doc.raw for doc in found}
                unequal += sum(1 for doc in batch if doc.raw not in held)
            else:
                assert len(found) == len(batch), (len(found), len(batch))
        count += len(batch)
    seconds = time.perf_counter() - started
    out = {"seconds": seconds, "documents": count}
    if mode == "check":
        out.update({"unequal": unequal, "total": coll.count_documents({})})
    print(json.dumps(out))


main()
