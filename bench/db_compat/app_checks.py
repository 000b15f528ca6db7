"""App-specific checks against a MongoDB-compatible server. usage: python app_checks.py mongodb://127.0.0.1:27018/"""
import sys, io, os, re, time, uuid, json, threading, statistics, datetime as dt, traceback
import pymongo, gridfs, bson
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure
import mongoengine as me

URI = sys.argv[1]
DB = "app_" + uuid.uuid4().hex[:8]
cl = pymongo.MongoClient(URI, serverSelectionTimeoutMS=5000, maxPoolSize=50)
db = cl[DB]
me.connect(DB, host=URI, serverSelectionTimeoutMS=5000)
res = []

def check(name):
    def deco(fn):
        t = time.time()
        try:
            out = fn(); ok = not (isinstance(out, str) and out.startswith("FAIL"))
        except Exception as e:
            ok, out = False, f"FAIL {type(e).__name__}: {str(e)[:300]}"
        res.append({"check": name, "ok": ok, "detail": out, "s": round(time.time() - t, 3)})
        print("PASS" if ok else "FAIL", f"{time.time()-t:.3f}s", name, "|", str(out)[:400], flush=True)
    return deco

def run_threads(n, fn):
    bar = threading.Barrier(n); out = [None] * n; errs = []
    def w(i):
        bar.wait()
        try: out[i] = fn(i)
        except Exception as e: errs.append(f"{type(e).__name__}: {str(e)[:120]}")
    ts = [threading.Thread(target=w, args=(i,)) for i in range(n)]
    [t.start() for t in ts]; [t.join() for t in ts]
    return out, errs

def try_(f):
    try: return f()
    except Exception as e: return f"ERR {type(e).__name__}: {str(e)[:150]}"

# ---------- (1) atomic counter ----------
def nxt(coll, key):
    d = coll.find_one_and_update({"_id": key}, {"$setOnInsert": {"created": dt.datetime.utcnow()}, "$inc": {"seq": 1}},
                                 upsert=True, return_document=ReturnDocument.AFTER)
    return d["seq"]

@check("1a counter: find_one_and_update upsert $setOnInsert+$inc (sequential)")
def _():
    c = db.counters
    v = [nxt(c, "seq_seq") for _ in range(5)]
    return f"values {v}" if v == [1, 2, 3, 4, 5] else f"FAIL values {v}"

@check("1b counter: 20 threads x 10 increments on existing doc")
def _():
    c = db.counters; nxt(c, "seq_thr")
    out, errs = run_threads(20, lambda i: [nxt(c, "seq_thr") for _ in range(10)])
    vals = [v for o in out if o for v in o]
    final = c.find_one({"_id": "seq_thr"})["seq"]
    msg = f"returned={len(vals)} distinct={len(set(vals))} final seq={final} (expect 201) errors={len(errs)} {errs[:1]}"
    return msg if len(set(vals)) == 200 and final == 201 and not errs else "FAIL " + msg

@check("1c counter: 20 threads, first upsert on missing doc")
def _():
    c = db.counters
    out, errs = run_threads(20, lambda i: nxt(c, "seq_new"))
    vals = [v for v in out if v is not None]
    docs = c.count_documents({"_id": "seq_new"}); final = c.find_one({"_id": "seq_new"})["seq"]
    msg = f"ok={len(vals)} distinct={len(set(vals))} docs={docs} final={final} errors={len(errs)} {errs[:1]}"
    return msg if len(set(vals)) == 20 and final == 20 and not errs else "FAIL " + msg

@check("1d workaround: counter via insert_one into unique-indexed seq collection (20 threads x 10)")
def _():
    c = db.seqlog; c.create_index([("k", 1), ("n", 1)], unique=True)
    def take(k):
        while True:
            last = c.find_one({"k": k}, sort=[("n", -1)])
            n = (last["n"] if last else 0) + 1
            try: c.insert_one({"k": k, "n": n}); return n
            except DuplicateKeyError: continue
    out, errs = run_threads(20, lambda i: [take("ticket") for _ in range(10)])
    vals = [v for o in out if o for v in o]
    msg = f"values={len(vals)} distinct={len(set(vals))} max={max(vals) if vals else None} errors={errs[:1]}"
    return msg if len(set(vals)) == 200 and not errs else "FAIL " + msg

@check("1e workaround: process-local threading.Lock around find_one_and_update (20x10)")
def _():
    c = db.counters; lk = threading.Lock()
    def f(i):
        r = []
        for _ in range(10):
            with lk: r.append(nxt(c, "seq_lock"))
        return r
    out, errs = run_threads(20, f)
    vals = [v for o in out if o for v in o]
    msg = f"distinct={len(set(vals))}/200 final={c.find_one({'_id': 'seq_lock'})['seq']}"
    return msg if len(set(vals)) == 200 else "FAIL " + msg

# ---------- (2) unique index ----------
class Tag(me.Document):
    name = me.StringField(unique=True)

@check("2 unique StringField -> NotUniqueError")
def _():
    Tag.ensure_indexes(); Tag(name="x").save()
    try: Tag(name="x").save()
    except me.NotUniqueError as e: return f"NotUniqueError raised; count={Tag.objects(name='x').count()}"
    return "FAIL no error"

@check("2b unique index under concurrency: 20 threads insert same key")
def _():
    c = db.uq; c.create_index("k", unique=True)
    out, errs = run_threads(20, lambda i: c.insert_one({"k": "same"}).inserted_id)
    ok = [o for o in out if o]; n = c.count_documents({"k": "same"})
    msg = f"succeeded={len(ok)} dupkey_errors={sum('DuplicateKey' in e for e in errs)} other={[e for e in errs if 'DuplicateKey' not in e][:1]} docs={n}"
    return msg if len(ok) == 1 and n == 1 else "FAIL " + msg

# ---------- (3) lease claim ----------
def claim_trials(trials, nthreads=2):
    c = db.work; both = 0; zero = 0; errs_all = []
    for t in range(trials):
        jid = c.insert_one({"state": "pending", "lease_until": None}).inserted_id
        def f(i):
            now = dt.datetime.utcnow()
            r = c.update_one({"_id": jid, "state": "pending", "$or": [{"lease_until": None}, {"lease_until": {"$lt": now}}]},
                             {"$set": {"state": "running", "lease_until": now + dt.timedelta(minutes=5), "owner": i}})
            return r.modified_count
        out, errs = run_threads(nthreads, f); errs_all += errs
        wins = sum(o or 0 for o in out)
        both += wins > 1; zero += wins == 0
    return both, zero, errs_all

@check("3 claim: update_one state=pending + $or lease null/expired, 2 threads, 50 trials")
def _():
    both, zero, errs = claim_trials(50)
    # expired-lease path
    c = db.work; jid = c.insert_one({"state": "pending", "lease_until": dt.datetime.utcnow() - dt.timedelta(minutes=1)}).inserted_id
    r = c.update_one({"_id": jid, "state": "pending", "$or": [{"lease_until": None}, {"lease_until": {"$lt": dt.datetime.utcnow()}}]}, {"$set": {"state": "running"}})
    msg = f"trials with 2 winners={both}/50, no winner={zero}, errors={errs[:1]}; expired-lease match={r.modified_count}"
    return msg if both == 0 and zero == 0 and not errs and r.modified_count == 1 else "FAIL " + msg

@check("3b claim without _id: 2 threads claim 'any pending' from 50 jobs via find_one_and_update")
def _():
    c = db.work2; c.insert_many([{"state": "pending", "lease_until": None, "n": i} for i in range(50)])
    def f(i):
        got = []
        while True:
            now = dt.datetime.utcnow()
            d = c.find_one_and_update({"state": "pending", "$or": [{"lease_until": None}, {"lease_until": {"$lt": now}}]},
                                      {"$set": {"state": "running", "owner": i, "lease_until": now + dt.timedelta(minutes=5)}}, sort=[("n", 1)])
            if d is None: return got
            got.append(d["n"])
    out, errs = run_threads(2, f)
    allv = [v for o in out if o for v in o]
    msg = f"claims={len(allv)} distinct={len(set(allv))} double-claimed={len(allv)-len(set(allv))} errors={errs[:1]}"
    return msg if len(allv) == 50 == len(set(allv)) and not errs else "FAIL " + msg

@check("3c workaround: claim via insert_one into unique-keyed 'claims' collection (2 threads, 50 trials)")
def _():
    c = db.claims; both = 0
    for t in range(50):
        key = f"job{t}"
        def f(i):
            try: c.insert_one({"_id": key, "owner": i}); return 1
            except DuplicateKeyError: return 0
        out, errs = run_threads(2, f); both += sum(o or 0 for o in out) != 1
    return f"trials without exactly one winner={both}/50" if both == 0 else f"FAIL trials without exactly one winner={both}/50"

# ---------- (4) GridFS ----------
class Att(me.Document):
    data = me.FileField()

@check("4 GridFS 5 MB: mongoengine FileField + pymongo GridFS/GridFSBucket")
def _():
    blob = os.urandom(5 * 1024 * 1024) + b"\x00raw\x00"
    t0 = time.time(); a = Att(); a.data.put(io.BytesIO(blob), filename="m.eml", content_type="message/rfc822"); a.save(); tput = time.time() - t0
    t0 = time.time(); got = Att.objects.get(id=a.id).data.read(); tget = time.time() - t0
    fs = gridfs.GridFS(db); t0 = time.time(); fid = fs.put(blob, filename="p.eml"); t2 = time.time() - t0
    t0 = time.time(); got2 = fs.get(fid).read(); t3 = time.time() - t0
    b = gridfs.GridFSBucket(db); bid = b.upload_from_stream("b.eml", io.BytesIO(blob)); got3 = b.open_download_stream(bid).read()
    ok = got == blob and got2 == blob and got3 == blob
    msg = f"mongoengine put {tput:.2f}s get {tget:.2f}s; GridFS put {t2:.2f}s get {t3:.2f}s; bucket ok={got3 == blob}; chunks={db['fs.chunks'].count_documents({})}"
    return msg if ok else "FAIL " + msg

# ---------- (5) NUL ----------
@check("5 NUL in strings")
def _():
    c = db.nul
    a = try_(lambda: c.insert_one({"s": "a\x00b"}).inserted_id and "inserted")
    back = try_(lambda: repr(c.find_one({"s": {"$exists": True}})["s"])) if a == "inserted" else "-"
    k = try_(lambda: c.insert_one({"k\x00": 1}) and "inserted")
    bn = try_(lambda: c.insert_one({"b": b"a\x00b"}) and repr(c.find_one({"b": {"$exists": True}})["b"]))
    class NulDoc(me.Document):
        body = me.StringField()
    m = try_(lambda: NulDoc(body="x\x00y").save() and "saved")
    u = try_(lambda: c.insert_one({"s": "ok"}) and c.update_one({"s": "ok"}, {"$set": {"s": "z\x00"}}) and "updated")
    msg = f"str value: {a}; key with NUL: {k}; bytes value: {bn}; mongoengine StringField: {m}; $set NUL: {u}; readback: {back}"
    return ("FAIL " if "ERR" in a or "ERR" in m else "") + msg

# ---------- (6) regex ----------
@check("6 case-insensitive regex")
def _():
    c = db.rx; c.insert_many([{"s": "Printer Jam"}, {"s": "printer ok"}, {"s": "Invoice"}, {"s": "ÄRGER"}])
    r = {}
    r["$regex+$options:i"] = try_(lambda: c.count_documents({"s": {"$regex": "printer", "$options": "i"}}))
    r["bson.Regex(i)"] = try_(lambda: c.count_documents({"s": bson.regex.Regex("printer", "i")}))
    r["re.compile(re.I)"] = try_(lambda: c.count_documents({"s": re.compile("printer", re.I)}))
    r["non-ascii i (ärger)"] = try_(lambda: c.count_documents({"s": {"$regex": "ärger", "$options": "i"}}))
    r["find() iterate re.I"] = try_(lambda: len(list(c.find({"s": re.compile("printer", re.I)}))))
    class Rx(me.Document):
        meta = {"collection": "rx"}; s = me.StringField()
    r["me icontains"] = try_(lambda: Rx.objects(s__icontains="PRINTER").count())
    r["me __raw__"] = try_(lambda: Rx.objects(__raw__={"s": {"$regex": re.escape("PRINTER"), "$options": "i"}}).count())
    ok = r["$regex+$options:i"] == 2 and r["me icontains"] == 2
    return ("" if ok else "FAIL ") + "; ".join(f"{k}={v}" for k, v in r.items())

# ---------- (7) 10k perf ----------
@check("7 10k docs: insert_many / individual insert, index (status,-created), first-page + count")
def _():
    c1, c2 = db.perf_many, db.perf_one
    base = dt.datetime(2026, 1, 1)
    mk = lambda i: {"status": ["new", "open", "pending", "closed"][i % 4], "created": base + dt.timedelta(minutes=i), "subject": f"subject {i}", "body": "hello " * 50, "skills": ["a", "b"]}
    docs = [mk(i) for i in range(10000)]
    c1.create_index([("status", 1), ("created", -1)])
    t0 = time.time(); c1.insert_many([dict(d) for d in docs]); tm = time.time() - t0
    c2.create_index([("status", 1), ("created", -1)])
    t0 = time.time()
    for d in docs: c2.insert_one(dict(d))
    to = time.time() - t0
    def page(skip):
        t0 = time.time()
        rows = list(c1.find({"status": "open"}).sort("created", -1).skip(skip).limit(25))
        n = c1.count_documents({"status": "open"})
        return time.time() - t0, rows, n
    p1 = [page(0) for _ in range(20)]
    med1 = statistics.median(x[0] for x in p1); rows, n = p1[0][1], p1[0][2]
    assert len(rows) == 25 and n == 2500 and rows[0]["created"] == base + dt.timedelta(minutes=9997), (len(rows), n, rows[0]["created"])
    pd = statistics.median(page(2000)[0] for _ in range(5))
    fo = statistics.median((lambda t0: (list(c1.find({"status": "open"}).sort("created", -1).limit(25)), time.time() - t0)[1])(time.time()) for _ in range(20))
    cnt = statistics.median((lambda t0: (c1.count_documents({"status": "open"}), time.time() - t0)[1])(time.time()) for _ in range(20))
    ex = try_(lambda: c1.find({"status": "open"}).sort("created", -1).limit(25).explain().get("queryPlanner", {}))
    eq_id = statistics.median((lambda t0: (c1.find_one({"_id": rows[3]["_id"]}), time.time() - t0)[1])(time.time()) for _ in range(20))
    c1.create_index("subject", unique=True)
    eq_ix = statistics.median((lambda t0: (c1.find_one({"subject": "subject 1234"}), time.time() - t0)[1])(time.time()) for _ in range(20))
    msg = (f"insert_many 10k {tm:.2f}s ({10000/tm:.0f}/s); insert_one x10k {to:.2f}s ({10000/to:.0f}/s); "
           f"page1 find+count median {med1*1000:.0f}ms (find {fo*1000:.0f}ms, count {cnt*1000:.0f}ms); skip 2000 page+count {pd*1000:.0f}ms; find_one by _id {eq_id*1000:.1f}ms; find_one by unique-indexed field {eq_ix*1000:.1f}ms; explain={str(ex)[:200]}")
    return msg

# ---------- (8) aggregate ----------
@check("8 aggregate $group by field / by day")
def _():
    c = db.agg; base = dt.datetime(2026, 3, 1, 22, 0)
    c.insert_many([{"cat": ["a", "b", "c"][i % 3], "created": base + dt.timedelta(hours=i)} for i in range(48)])
    r = {}
    r["$group by field"] = try_(lambda: sorted((d["_id"], d["n"]) for d in c.aggregate([{"$group": {"_id": "$cat", "n": {"$sum": 1}}}])))
    r["$group _id $dateToString"] = try_(lambda: sorted((d["_id"], d["n"]) for d in c.aggregate([{"$group": {"_id": {"$dateToString": {"format": "%Y-%m-%d", "date": "$created"}}, "n": {"$sum": 1}}}])))
    r["$project $dateToString then $group"] = try_(lambda: sorted((d["_id"], d["n"]) for d in c.aggregate([{"$project": {"d": {"$dateToString": {"format": "%Y-%m-%d", "date": "$created"}}}}, {"$group": {"_id": "$d", "n": {"$sum": 1}}}])))
    r["$dateTrunc"] = try_(lambda: sorted((str(d["_id"]), d["n"]) for d in c.aggregate([{"$group": {"_id": {"$dateTrunc": {"date": "$created", "unit": "day"}}, "n": {"$sum": 1}}}])))
    r["$year/$month/$dayOfMonth"] = try_(lambda: sorted((str(d["_id"]), d["n"]) for d in c.aggregate([{"$group": {"_id": {"y": {"$year": "$created"}, "m": {"$month": "$created"}, "d": {"$dayOfMonth": "$created"}}, "n": {"$sum": 1}}}])))
    r["$match+$group+$sort+$count"] = try_(lambda: list(c.aggregate([{"$match": {"cat": "a"}}, {"$group": {"_id": "$cat", "n": {"$sum": 1}}}, {"$sort": {"n": -1}}]))[0]["n"])
    r["$avg"] = try_(lambda: list(c.aggregate([{"$group": {"_id": None, "x": {"$avg": 1}}}])))
    ok = r["$group by field"] == [("a", 16), ("b", 16), ("c", 16)]
    return ("" if ok else "FAIL ") + " ; ".join(f"{k} -> {v}" for k, v in r.items())

# ---------- (9) datetime ----------
@check("9 datetime precision + tz")
def _():
    c = db.dt; naive = dt.datetime(2026, 5, 6, 7, 8, 9, 123456)
    aware = dt.datetime(2026, 5, 6, 9, 8, 9, 123000, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    c.insert_one({"_id": 1, "a": naive, "b": aware})
    d = c.find_one({"_id": 1})
    dz = pymongo.MongoClient(URI, tz_aware=True)[DB].dt.find_one({"_id": 1})
    q = c.count_documents({"a": dt.datetime(2026, 5, 6, 7, 8, 9, 123000)})
    msg = f"naive .123456 -> {d['a'].isoformat()}; +02:00 aware -> {d['b'].isoformat()} (naive UTC); tz_aware client -> {dz['b'].isoformat()}; equality query at ms={q}"
    ok = d["a"] == dt.datetime(2026, 5, 6, 7, 8, 9, 123000) and d["b"] == dt.datetime(2026, 5, 6, 7, 8, 9, 123000) and q == 1
    return msg if ok else "FAIL " + msg

# ---------- (10) list ops / embedded ----------
@check("10 $addToSet/$pull, $elemMatch, dotted paths, positional")
def _():
    c = db.lists
    c.insert_one({"_id": 1, "skills": ["a"], "msgs": [{"id": "m1", "from": "x@y", "n": 1}, {"id": "m2", "from": "z@y", "n": 5}], "meta": {"lang": "de", "src": {"kind": "imap"}}})
    r = {}
    c.update_one({"_id": 1}, {"$addToSet": {"skills": "b"}}); c.update_one({"_id": 1}, {"$addToSet": {"skills": "b"}})
    c.update_one({"_id": 1}, {"$addToSet": {"skills": {"$each": ["c", "a"]}}}); c.update_one({"_id": 1}, {"$pull": {"skills": "a"}})
    r["addToSet/$each/pull"] = c.find_one({"_id": 1})["skills"]
    r["$pull cond on subdocs"] = try_(lambda: c.update_one({"_id": 2}, {"$pull": {"msgs": {"id": "zz"}}}).matched_count)
    r["$elemMatch field eq"] = try_(lambda: c.count_documents({"msgs": {"$elemMatch": {"id": "m2", "from": "z@y"}}}))
    r["$elemMatch with op"] = try_(lambda: c.count_documents({"msgs": {"$elemMatch": {"n": {"$gt": 3}}}}))
    r["$elemMatch mixed"] = try_(lambda: c.count_documents({"msgs": {"$elemMatch": {"id": "m2", "n": {"$gt": 3}}}}))
    r["dotted array msgs.id"] = try_(lambda: c.count_documents({"msgs.id": "m2"}))
    r["dotted nested meta.src.kind"] = try_(lambda: c.count_documents({"meta.src.kind": "imap"}))
    r["$set dotted meta.lang"] = try_(lambda: c.update_one({"_id": 1}, {"$set": {"meta.lang": "en"}}).modified_count)
    r["$size"] = try_(lambda: c.count_documents({"msgs": {"$size": 2}}))
    r["positional msgs.$.n"] = try_(lambda: c.update_one({"_id": 1, "msgs.id": "m1"}, {"$set": {"msgs.$.n": 9}}).modified_count)
    r["all-positional msgs.$[].n"] = try_(lambda: c.update_one({"_id": 1}, {"$set": {"msgs.$[].n": 9}}).modified_count)
    r["arrayFilters"] = try_(lambda: c.update_one({"_id": 1}, {"$set": {"msgs.$[m].n": 7}}, array_filters=[{"m.id": "m1"}]).modified_count)
    r["index path msgs.0.n"] = try_(lambda: c.update_one({"_id": 1}, {"$set": {"msgs.0.n": 8}}).modified_count)
    r["$push $each $slice"] = try_(lambda: c.update_one({"_id": 1}, {"$push": {"msgs": {"$each": [{"id": "m3"}], "$slice": -10}}}).modified_count)
    return " ; ".join(f"{k}={v}" for k, v in r.items())

# ---------- (11) distinct ----------
@check("11 distinct (plain, array, embedded, with filter)")
def _():
    c = db.lists; c.insert_one({"_id": 2, "skills": ["x", "b"], "msgs": [{"id": "m9", "from": "q@y"}], "meta": {"lang": "fr"}})
    r = {"skills": sorted(c.distinct("skills")), "msgs.from": sorted(c.distinct("msgs.from")), "meta.lang": sorted(c.distinct("meta.lang")), "filtered": c.distinct("meta.lang", {"_id": 2})}
    return str(r)

# ---------- (12) array index ----------
@check("12 index on array field + $in / $all")
def _():
    c = db.arr; c.create_index("skills")
    c.insert_many([{"n": i, "skills": [["billing", "printer", "network", "de"][i % 4], ["de", "en"][i % 2]]} for i in range(1000)])
    t0 = time.time(); a = c.count_documents({"skills": {"$in": ["billing", "network"]}}); ta = time.time() - t0
    t0 = time.time(); b = c.count_documents({"skills": {"$all": ["printer", "en"]}}); tb = time.time() - t0
    e = c.count_documents({"skills": "de"})
    ok = a == 500 and b == 250 and e == 750
    msg = f"$in={a} (500) {ta*1000:.0f}ms; $all={b} (250) {tb*1000:.0f}ms; eq 'de'={e} (750); index={sorted(c.index_information())}"
    return msg if ok else "FAIL " + msg

# ---------- (13) change streams ----------
@check("13 change streams watch()")
def _():
    try:
        with db.lists.watch(max_await_time_ms=200) as s:
            db.lists.insert_one({"w": 1}); ev = s.try_next()
        return f"FAIL? supported, event={ev}"
    except Exception as e:
        return f"FAIL (expected) {type(e).__name__}: {str(e)[:150]}"

@check("14 transactions (session.with_transaction)")
def _():
    with cl.start_session() as s:
        s.with_transaction(lambda ss: db.tx.insert_one({"a": 1}, session=ss))
    return "committed"

cl.drop_database(DB)
print(json.dumps(res, default=str), file=open(f"/tmp/dbcompat/app_checks.json", "w"))
