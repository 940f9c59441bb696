"""Encodes oplog entries with Debian's python3-bson (a BSON implementation independent of this
project's): reads a JSON array of canonical Extended JSON documents on stdin, prints a JSON array
of the hex of each document's BSON bytes, fields in the order written.

Usage: /usr/bin/python3 test/support/oplog-encode.py < entries.json
"""
import json
import sys

from bson import encode
from bson.json_util import CANONICAL_JSON_OPTIONS, loads


def main():
    docs = json.load(sys.stdin)
    print(json.dumps([encode(loads(json.dumps(doc), json_options=CANONICAL_JSON_OPTIONS)).hex() for doc in docs]))


main()
