"""A second, independent client for the MongoDB contract tests: pymongo (Debian's python3-pymongo).

Usage: /usr/bin/python3 test/support/pymongo-smoke.py MONGODB_URI DATABASE
Prints one JSON object describing what the server answered; exits 3 when pymongo is missing.
"""
import datetime
import json
import sys

try:
    import bson
    import pymongo
    from bson.decimal128 import Decimal128
    from bson.int64 import Int64
    from bson.objectid import ObjectId
except ImportError as exc:  # the caller turns this into a test skip with this message
    print(json.dumps({"missing": str(exc)}))
    sys.exit(3)


def main():
    uri, dbname = sys.argv[1], sys.argv[2]
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000, retryWrites=False)
    out = {"pymongo": pymongo.version}
    hello = client.admin.command("ismaster")
    out["maxWireVersion"] = hello["maxWireVersion"]
    coll = client[dbname]["py"]
    oid = ObjectId()
    doc = {
        "_id": oid,
        "name": "guernica",
        "n": Int64(2 ** 40 + 1),
        "price": Decimal128("12.50"),
        "made": datetime.datetime(1937, 6, 4),
        "tags": ["a", "b"],
    }
    coll.insert_one(doc)
    coll.insert_many([{"_id": i, "k": i % 3} for i in range(300)])
    raw = client[dbname].get_collection(
        "py", codec_options=bson.codec_options.CodecOptions(document_class=bson.raw_bson.RawBSONDocument)
    ).find_one({"_id": oid})
    out["roundTripBytes"] = raw.raw == bson.BSON.encode(doc)
    out["byLong"] = coll.count_documents({"n": Int64(2 ** 40 + 1)})
    out["byDecimal"] = coll.count_documents({"price": {"$gt": Decimal128("12.4")}})
    out["byDate"] = coll.count_documents({"made": {"$lt": datetime.datetime(1970, 1, 1)}})
    out["iterated"] = sum(1 for _ in coll.find({"k": {"$exists": True}}).batch_size(50))
    res = coll.update_one({"_id": oid}, {"$set": {"name": "g2"}, "$inc": {"n": 1}})
    out["updated"] = [res.matched_count, res.modified_count]
    after = coll.find_one({"_id": oid})
    out["afterUpdate"] = {"name": after["name"], "n": str(after["n"]), "nIsInt64": isinstance(after["n"], Int64)}
    out["upserted"] = coll.update_one({"_id": "new"}, {"$set": {"v": 1}}, upsert=True).upserted_id
    out["deleted"] = coll.delete_many({"k": 0}).deleted_count
    try:
        coll.insert_one({"_id": oid})
        out["duplicate"] = None
    except pymongo.errors.DuplicateKeyError as exc:
        out["duplicate"] = exc.code
    out["count"] = coll.count_documents({})
    client[dbname].drop_collection("py")
    client.close()
    print(json.dumps(out))


main()
