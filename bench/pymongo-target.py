"""Baselines for the target benchmark: what a short pymongo script does with the same raw documents.

Usage: /usr/bin/python3 bench/pymongo-target.py insert|scan MONGODB_URI DATABASE COLLECTION FILE.bson
insert: insert_many of the raw documents (RawBSONDocument, batches of 1,000, unordered).
scan:   find({_id: {$in: batch}}) for every batch of 1,000 _ids, documents read raw.
Prints one JSON object: {"seconds": ..., "documents": ...}.
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
    count = 0
    for batch in batches(path):
        if mode == "insert":
            coll.insert_many(batch, ordered=False)
        else:
            ids = [doc["_id"] for doc in batch]
            count_found = sum(1 for _ in coll.find({"_id": {"$in": ids}}))
            assert count_found == len(batch), (count_found, len(batch))
        count += len(batch)
    print(json.dumps({"seconds": time.perf_counter() - started, "documents": count}))


main()
