"""The offline model's numpy-only prediction path: same vectors and same answers as the scikit-learn model,
loaded without importing scikit-learn, and older saved files still load."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.utils import murmurhash3_32 as sklearn_murmurhash

from triage.dataset import read_dataset
from triage.evaluate import taxonomy_from
from triage.local import Example, OfflineModel, model_text
from triage.provider import Taxonomy, TriageInput
from triage.runtime import LEAN_MODEL_FILE, MODEL_FILE, LeanModel, ModelStore
from triage.similar import SimilarIndex, SimilarIndexStore, _hasher, hashed_terms
from triage.textvec import TfidfVocabulary, hashed_column, murmurhash3_32

ROOT = Path(__file__).resolve().parent.parent
DEV_CSV = ROOT.parent / "shared" / "corpus" / "tickets" / "dev.csv"
INT32_MIN_TOKEN = "aivlts3m"  # murmurhash3_32 of it is -2**31: the edge case _hashing_fast.pyx treats apart
AWKWARD = [
    ("", ""),
    ("Ärger mit der Übergröße", "Die Straße ist gesperrt, Größe XXL fehlt. Grüße aus Köln! ÄÖÜ äöü ß"),
    ("日本語のチケット", "サーバーが落ちました 😀 emoji 🚀 and Ελληνικά κείμενο"),
    ("!!!", "?? ... --- *** ### @@@ ,,, ;;;"),
    ("1234 5678", "0000 42 3.14159 1e10 0x80070005 2024-01-02"),
    ("long", "a" * 5000 + " " + "bé" * 300 + " supercalifragilisticexpialidocious" * 3),
    ("tabs\tand\nnewlines", "line one\n\n\nline two\t\tcol  two   spaces\r\nend \u00a0nbsp\u2003em"),
    ("single a b c", "x y z I o"),
    (INT32_MIN_TOKEN, f"{INT32_MIN_TOKEN} {INT32_MIN_TOKEN.upper()} hash edge"),
]


def _dev_rows():
    if not DEV_CSV.exists():
        pytest.skip(f"{DEV_CSV} is absent: the shared ticket corpus is needed for this comparison")
    return read_dataset(str(DEV_CSV)).rows


def _texts(rows) -> list[str]:
    return [model_text(r.subject, r.body) for r in rows] + [model_text(s, b) for s, b in AWKWARD]


def _assert_same_rows(lean: TfidfVocabulary, fitted, texts: list[str]) -> None:
    matrix = fitted.transform(texts).tocsr()
    matrix.sort_indices()
    for row, text in enumerate(texts):
        columns, values = lean.vector(text)
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        assert columns.tolist() == matrix.indices[start:end].tolist(), text[:60]
        assert np.allclose(values, matrix.data[start:end], rtol=1e-12, atol=1e-15), text[:60]


def _lean_vocabulary(fitted, analyzer: str) -> TfidfVocabulary:
    return TfidfVocabulary(
        analyzer=analyzer,
        ngram_range=fitted.ngram_range,
        vocabulary={t: int(c) for t, c in fitted.vocabulary_.items()},
        idf=np.asarray(fitted.idf_),
    )


def test_tfidf_vectors_equal_sklearns_on_the_corpus_and_awkward_text():
    rows = _dev_rows()
    train = _texts(rows[:600]) + ["aivlts3m ärger über straße 日本語のチケット emoji 1234 0000"] * 2
    probe = _texts(rows[2000:2200])
    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=20_000).fit(train)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2).fit(train)
    _assert_same_rows(_lean_vocabulary(words, "word"), words, probe)
    _assert_same_rows(_lean_vocabulary(chars, "char_wb"), chars, probe)
    assert any(len(_lean_vocabulary(chars, "char_wb").vector(t)[0]) for t in _texts([])[1:3])  # umlauts matched


def test_murmurhash_and_hashed_vectors_equal_sklearns():
    rows = _dev_rows()
    tokens = [INT32_MIN_TOKEN, "", "a", "ab", "abc", "abcd", "abcde", "größe", "日本語", "😀", "x" * 1001]
    for token in tokens:
        assert murmurhash3_32(token.encode()) == sklearn_murmurhash(token, positive=False), token
    assert murmurhash3_32(INT32_MIN_TOKEN.encode()) == -(2**31)
    for n_features in (2**20, 1000, 7):
        hasher = HashingVectorizer(n_features=n_features, alternate_sign=False, norm=None, dtype=np.float32)
        expected = hasher.transform([INT32_MIN_TOKEN])
        assert hashed_column(INT32_MIN_TOKEN, n_features) == expected.indices[0]
    hasher = HashingVectorizer(n_features=2**20, alternate_sign=False, norm=None, dtype=np.float32)
    texts = [f"{r.subject} {r.subject} {r.body}".lower() for r in rows[:300]] + [s + " " + b for s, b in AWKWARD]
    matrix = hasher.transform(texts)
    matrix.sort_indices()
    for row, text in enumerate(texts):
        columns, counts = hashed_terms(text)
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        assert columns.tolist() == matrix.indices[start:end].tolist()
        assert counts.dtype == np.float32 and np.array_equal(counts, matrix.data[start:end])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model trained on part of dev.csv, saved (pickle and plain data) and loaded both ways."""
    rows = _dev_rows()
    train = rows[:700]
    taxonomy = taxonomy_from(train)
    examples = [
        Example(
            r.subject, r.body, r.category, r.priority, [t for t in r.skills if t in taxonomy.skills] or None, f"#{i}"
        )
        for i, r in enumerate(train)
    ]
    model = OfflineModel.train(taxonomy, examples, seeds=[], keywords={"Billing": ["invoice", "rechnung"]})
    model.auto_route = {"threshold": 0.55, "share": 0.5, "accuracy": 0.9}
    directory = tmp_path_factory.mktemp("model")
    ModelStore(str(directory)).save(model)
    return model, ModelStore(str(directory)).load(), rows


def _items(rows) -> list[TriageInput]:
    return [TriageInput(r.subject, r.body) for r in rows] + [TriageInput(s, b) for s, b in AWKWARD]


def _assert_same_results(expected, actual) -> None:
    assert len(expected) == len(actual)
    for want, got in zip(expected, actual, strict=True):
        assert (got.category, got.priority, got.required_skills, got.auto_route, got.language) == (
            want.category,
            want.priority,
            want.required_skills,
            want.auto_route,
            want.language,
        )
        assert got.helpful_notes == want.helpful_notes and got.summary == want.summary
        assert got.confidence.keys() == want.confidence.keys()
        assert np.allclose([got.confidence[k] for k in want.confidence], list(want.confidence.values()))


def test_lean_model_answers_as_the_sklearn_model(trained):
    model, lean, rows = trained
    assert isinstance(lean, LeanModel) and lean.taxonomy == model.taxonomy
    items = _items(rows[2500:2700]) + _items(rows[:40])  # unseen tickets, then near-copies of labelled ones
    expected, actual = model.predict(items), lean.predict(items)
    _assert_same_results(expected, actual)
    assert sum("Very similar to ticket #" in r.helpful_notes for r in actual) >= 40  # the memory was used
    assert {r.auto_route for r in actual} == {True, False}
    assert len({r.category for r in actual}) > 3 and any(r.required_skills for r in actual)
    assert lean.predict([]) == []


def test_fresh_install_model_without_memory_or_two_priorities_answers_the_same(tmp_path):
    taxonomy = Taxonomy(categories=("billing", "network"), skills=("payments", "vpn"), priorities=("high", "low"))
    seeds = [
        Example("Invoice", "invoice refund charged twice payment card", "billing", "low", ["payments"]),
        Example("Rechnung", "rechnung doppelt abgebucht zahlung karte", "billing", "low", ["payments"]),
        Example("VPN", "vpn tunnel router wifi cannot connect", "network", "high", ["vpn"]),
        Example("Netz", "netzwerk router wlan keine verbindung vpn", "network", "high", ["vpn"]),
    ]
    model = OfflineModel.train(taxonomy, [], seeds, {"vpn": ["vpn"], "payments": ["refund"]})
    ModelStore(str(tmp_path)).save(model)
    lean = ModelStore(str(tmp_path)).load()
    assert isinstance(lean, LeanModel) and model.memory is None
    items = [TriageInput("VPN down", "the vpn tunnel drops"), TriageInput("Refund", "charged twice, refund")]
    items += [TriageInput(s, b) for s, b in AWKWARD]
    _assert_same_results(model.predict(items), lean.predict(items))


def test_loading_and_predicting_needs_no_sklearn(trained, tmp_path):
    model, _, rows = trained
    index = SimilarIndex.build(list(range(1, 201)), [f"{r.subject} {r.body}".lower() for r in rows[:200]])
    SimilarIndexStore(str(tmp_path)).save(index)
    ModelStore(str(tmp_path)).save(model)
    script = f"""
import json, sys
from triage.provider import TriageInput
from triage.runtime import ModelStore
from triage.similar import SimilarIndexStore
from triage import jobs, notes, service  # what the daemon's triage job imports
model = ModelStore({str(tmp_path)!r}).load()
result = model.predict([TriageInput({rows[5].subject!r}, {rows[5].body!r})])[0]
near = SimilarIndexStore({str(tmp_path)!r}).load().nearest({rows[7].body.lower()!r}, before=10**6)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("sklearn", "scipy", "joblib"))
print(json.dumps({{"category": result.category, "near": near, "loaded": loaded}}))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer["loaded"] == []
    assert answer["category"] == model.predict([TriageInput(rows[5].subject, rows[5].body)])[0].category
    assert answer["near"][0][0] == 8  # the ticket itself, numbered 8


def test_a_model_saved_before_the_plain_form_loads_through_the_pickle_once(trained, tmp_path, caplog):
    model, _, rows = trained
    ModelStore(str(tmp_path)).save(model)
    os.remove(tmp_path / LEAN_MODEL_FILE)  # as an older version left it: the pickle alone
    with caplog.at_level(logging.INFO, logger="triage.saved"):
        store = ModelStore(str(tmp_path))
        loaded = store.load()
    assert isinstance(loaded, OfflineModel) and "no current plain-array form" in caplog.text
    assert (tmp_path / LEAN_MODEL_FILE).exists()  # written from the pickle: the next start skips scikit-learn
    converted = store.load()
    assert isinstance(converted, LeanModel) and isinstance(ModelStore(str(tmp_path)).load(), LeanModel)
    item = [TriageInput(rows[2800].subject, rows[2800].body)]
    _assert_same_results(loaded.predict(item), converted.predict(item))


def test_arrays_of_an_older_pickle_are_not_used(trained, tmp_path):
    """A retrain's pickle written without its arrays (a save cut short, an older version beside a newer one)."""
    import joblib

    model, _, rows = trained
    store = ModelStore(str(tmp_path))
    store.save(model)
    assert isinstance(store.load(), LeanModel)
    retrained = OfflineModel.train(model.taxonomy, [], [Example("x", "only billing here", "Billing and Payments")], {})
    joblib.dump(retrained, tmp_path / MODEL_FILE)
    loaded = store.load()
    assert isinstance(loaded, OfflineModel) and loaded.memory is None  # the newer pickle, not the stale arrays
    again = store.load()
    assert isinstance(again, LeanModel) and again.memory is None  # its arrays, written on the way
    item = [TriageInput(rows[0].subject, rows[0].body)]
    _assert_same_results(retrained.predict(item), again.predict(item))


def test_a_damaged_plain_file_falls_back_to_the_pickle(trained, tmp_path):
    model, _, _ = trained
    ModelStore(str(tmp_path)).save(model)
    (tmp_path / LEAN_MODEL_FILE).write_bytes(b"HELPDESK-ARRAYS-1\n" + b"\xff" * 40)
    assert isinstance(ModelStore(str(tmp_path)).load(), OfflineModel)


def test_similar_index_from_plain_arrays_finds_what_the_pickle_finds(tmp_path, caplog):
    rows = _dev_rows()
    texts = [f"{r.subject} {r.subject} {r.body}".lower() for r in rows[:400]]
    SimilarIndexStore(str(tmp_path)).save(SimilarIndex.build(list(range(1, 401)), texts))
    lean = SimilarIndexStore(str(tmp_path)).load()
    os.remove(tmp_path / "similar-tickets.arrays")
    with caplog.at_level(logging.INFO, logger="triage.saved"):
        pickled = SimilarIndexStore(str(tmp_path)).load()
    assert "no current plain-array form" in caplog.text
    assert (tmp_path / "similar-tickets.arrays").exists()
    assert lean is not None and pickled is not None and type(lean.postings) is not type(pickled.postings)
    for r in rows[300:420] + rows[2000:2050]:
        query = f"{r.subject} {r.body}".lower()
        assert lean.nearest(query, before=350) == pickled.nearest(query, before=350)
        counts = _hasher().transform([query])  # what the index held before: scikit-learn's hashing
        expected = (1.0 + np.log(counts.data)) * lean.idf[counts.indices]
        keep = expected > 0
        terms, weights = lean.vector(query)
        assert terms.tolist() == counts.indices[keep].tolist()
        assert np.allclose(weights, expected[keep] / np.linalg.norm(expected[keep]))


def test_the_triage_job_in_a_fresh_process_triages_without_sklearn(db, settings):
    """What the daemon does at start: load the saved model and triage the first ticket, sklearn never imported."""
    from config import to_environ
    from models import Ticket
    from tests.triage_support import make_ticket
    from triage.taxonomy import ensure_default_taxonomy
    from triage.training import train_from_database

    ensure_default_taxonomy()
    train_from_database(settings)
    ticket = make_ticket("Charged twice", "My credit card was charged twice for the March invoice. I want a refund.")
    script = """
import json, sys
from config import load_settings
from models import connect_db
from triage import jobs
settings = load_settings(env_file=None)
connect_db(settings.mongo_uri)
jobs.triage_job(settings)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("sklearn", "scipy", "joblib"))))
"""
    env = {**os.environ, **to_environ(settings)}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    ticket = Ticket.objects(id=ticket.id).get()
    assert ticket.triage.state in ("done", "review") and ticket.triage.provider == "local"
    assert ticket.category == "billing"


def test_an_older_pickle_without_the_transposed_memory_is_converted_too(trained, tmp_path):
    import copy

    import joblib

    model, _, rows = trained
    older = copy.copy(model)
    del older.memory_t  # pickles from before the transposed memory was kept
    joblib.dump(older, tmp_path / MODEL_FILE)
    store = ModelStore(str(tmp_path))
    assert isinstance(store.load(), OfflineModel)
    converted = store.load()
    assert isinstance(converted, LeanModel)
    items = _items(rows[:5])  # labelled tickets: the memory answers
    _assert_same_results(model.predict(items), converted.predict(items))
    assert all("Very similar to ticket #" in r.helpful_notes for r in converted.predict(items[:5]))


def _file_backed_mb() -> float:
    return int(Path("/proc/self/status").read_text().split("RssFile:")[1].split()[0]) / 1024


def test_mapped_weights_and_postings_do_not_stay_resident(tmp_path):
    """Every ticket touches other rows: without handing pages back, memory would grow to the file's size."""
    from triage.arrayfile import read_arrays, release_pages, write_arrays

    write_arrays(str(tmp_path / "a.arrays"), {}, {"postings": np.ones(4_000_000), "weights": np.ones((100_000, 40))})
    _, arrays = read_arrays(str(tmp_path / "a.arrays"), rows_on_demand=("weights",))
    before = _file_backed_mb()
    assert float(arrays["postings"].sum()) == 4_000_000  # reads all 32 MB
    assert _file_backed_mb() - before > 20
    release_pages(arrays["postings"])
    assert _file_backed_mb() - before < 5
    rows = arrays["weights"][np.arange(0, 100_000, 7)]  # a page in every few of the 32 MB
    assert rows.shape == (14_286, 40) and float(rows.sum()) == 14_286 * 40
    assert _file_backed_mb() - before < 5
