"""follow-up probes: $elemMatch forms, NUL queries, regex monkeypatch workaround. usage: python followup.py URI"""
import sys, re, uuid, pymongo, bson, mongoengine as me
URI = sys.argv[1]; DB = "fu_" + uuid.uuid4().hex[:8]
c = pymongo.MongoClient(URI)[DB]
def t(label, f):
    try: print(label, "->", f())
    except Exception as e: print(label, "-> ERR", type(e).__name__, str(e)[:140])
c.x.insert_one({"_id": 1, "sc": [1, 5, 9], "msgs": [{"id": "m1", "n": 1}, {"id": "m2", "n": 5}]})
t("elemMatch scalar {$gt:3}", lambda: c.x.count_documents({"sc": {"$elemMatch": {"$gt": 3}}}))
t("elemMatch subdoc {n:{$gt:3}}", lambda: c.x.count_documents({"msgs": {"$elemMatch": {"n": {"$gt": 3}}}}))
t("elemMatch subdoc {n:5}", lambda: c.x.count_documents({"msgs": {"$elemMatch": {"n": 5}}}))
t("dotted msgs.n $gt 3", lambda: c.x.count_documents({"msgs.n": {"$gt": 3}}))
t("find elemMatch subdoc op (iterate)", lambda: len(list(c.x.find({"msgs": {"$elemMatch": {"n": {"$gt": 3}}}}))))
c.n.insert_one({"s": "a\x00b", "k": 1})
t("NUL eq query", lambda: c.n.count_documents({"s": "a\x00b"}))
t("NUL regex query", lambda: c.n.count_documents({"s": {"$regex": "a\x00", "$options": ""}}))
t("NUL readback", lambda: repr(c.n.find_one({"k": 1})["s"]))
t("NUL in _id", lambda: c.n.insert_one({"_id": "id\x00x"}).inserted_id)
t("key with dot", lambda: c.n.insert_one({"a.b": 1}).inserted_id)
t("key with $", lambda: c.n.insert_one({"$a": 1}).inserted_id)
t("nested array", lambda: c.n.insert_one({"na": [[1, 2], [3]]}).inserted_id)
t("NaN", lambda: c.n.insert_one({"f": float("nan")}).inserted_id)
# regex monkeypatch workaround for mongoengine / Flask-Admin
import mongoengine.fields as mf
_orig = mf.StringField.prepare_query_value
def _patched(self, op, value):
    v = _orig(self, op, value)
    if isinstance(v, re.Pattern):
        return bson.regex.Regex(v.pattern, "i" if v.flags & re.IGNORECASE else "")
    return v
me.connect(DB, host=URI)
class Rx(me.Document):
    s = me.StringField()
Rx(s="Printer Jam").save(); Rx(s="invoice").save()
t("me icontains unpatched", lambda: Rx.objects(s__icontains="PRINTER").count())
mf.StringField.prepare_query_value = _patched
t("me icontains patched", lambda: Rx.objects(s__icontains="PRINTER").count())
t("me istartswith patched", lambda: Rx.objects(s__istartswith="print").count())
t("me iexact patched", lambda: Rx.objects(s__iexact="INVOICE").count())
t("me contains patched (case-sens.)", lambda: Rx.objects(s__contains="PRINTER").count())
pymongo.MongoClient(URI).drop_database(DB)
