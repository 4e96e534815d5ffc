"""``snaprag eval --answers FILE``: do answers contain the answer, and stay quiet otherwise?

FILE is SQuAD-format JSON (KorQuAD, or a set written by reading your own documents): each
question has one or more gold answer texts. Every question is asked once through the
default pipeline (``Engine.ask``, answer cache off) and the report gives

* ``answer_recall``: the share of questions whose answer contains a gold answer text
  (case and spacing ignored; an abstention contains nothing);
* ``top1`` / ``top3``: the share with a gold text in the first hit / the first three hits
  (what retrieval hands the answerer);
* ``mean_chars``: the answer's length in characters, citations left out;
* ``abstained``: the share of these (answerable) questions answered "no answer found";
* ``out_of_corpus_abstained``: the share of questions about something else (SQuAD 2.0
  questions marked ``is_impossible``, and those of ``--out-of-corpus``) that got no answer.

Without ``--corpus`` the paragraphs of FILE are the documents (indexed like ``snaprag eval``
does, sharing its cached index); with ``--corpus DIR`` the questions are asked of that
folder's files (PDFs, Markdown ...), ingested into a cached index.

Every figure is reported for the whole file and for its two halves, cut at an article
boundary: the first half for tuning, the second held out. ``--out-of-corpus`` takes a BEIR
folder (its ``queries.jsonl``), a ``.jsonl`` of ``{"text": ...}`` lines, a SQuAD ``.json``
or a text file with one question per line; they are halved the same way.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config
from ..engine import Engine
from ..errors import QueryError
from ..ingest.model_choice import AUTO_MODEL
from .eval import eval_workdir, load_collection
from .retrieval import machine as bench_machine

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    #: gold answer texts; empty for a question with no answer in the documents
    answers: tuple[str, ...]
    #: index of its article (halves are cut at an article boundary)
    article: int


def read_questions(path: Path) -> list[Question]:
    """The questions of a SQuAD-format file (SQuAD 2.0's unanswerable ones with no gold)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
        out = []
        for a, article in enumerate(data):
            for para in article.get("paragraphs", []):
                for qa in para.get("qas", []):
                    golds = () if qa.get("is_impossible") else _golds(qa)
                    out.append(Question(str(qa["question"]), golds, a))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise QueryError(
            f"{path} is not a SQuAD-format JSON file ({exc}); expected "
            '{"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question", '
            '"answers": [{"text"}]}]}]}]}'
        ) from exc
    if not out:
        raise QueryError(f"{path} has no questions; add some under data[].paragraphs[].qas")
    return out


def _golds(qa: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(a["text"]) for a in qa.get("answers", []) if str(a.get("text", "")).strip())


def read_out_of_corpus(path: Path) -> list[str]:
    """Questions the documents cannot answer, from a BEIR folder, JSONL, SQuAD or text."""
    try:
        if path.is_dir():
            path = path / "queries.jsonl"
        if path.suffix.lower() == ".json":
            return [q.text for q in read_questions(path)]
        lines = path.read_text(encoding="utf-8").splitlines()
        if path.suffix.lower() == ".jsonl":
            return [str(json.loads(line)["text"]) for line in lines if line.strip()]
        return [line.strip() for line in lines if line.strip()]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise QueryError(
            f"cannot read out-of-corpus questions from {path}: {exc}; give a BEIR folder, "
            'a .jsonl of {"text": ...} lines, a SQuAD .json or one question per line'
        ) from exc


def halves(questions: Sequence[Question]) -> int:
    """Where the second half starts: the first article boundary at or after the middle."""
    middle = len(questions) // 2
    for i in range(middle, len(questions)):
        if i == 0 or questions[i].article != questions[i - 1].article:
            return i
    return middle


def contains(text: str, gold: str) -> bool:
    """Whether ``gold`` appears in ``text``, case and spacing ignored."""
    return _norm(gold) in _norm(text)


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def run(
    dataset: Path,
    corpus: Path | None = None,
    out_of_corpus: Path | None = None,
    preset: str | None = None,
    k: int = 5,
    limit: int | None = None,
    progress: Progress | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Ask every question (and every out-of-corpus one) and measure; ``limit`` keeps the
    first N of each (for a quick look)."""
    dataset = dataset.resolve()
    questions = read_questions(dataset)
    unanswerable = [q.text for q in questions if not q.answers]
    questions = [q for q in questions if q.answers]
    ooc = read_out_of_corpus(out_of_corpus.resolve()) if out_of_corpus else []
    if limit:
        questions, unanswerable, ooc = questions[:limit], unanswerable[:limit], ooc[:limit]
    settings.setdefault("cache", False)  # measure the pipeline, not the answer cache
    config = Config.from_env(model=preset, **settings)
    engine, source = _open_index(dataset, corpus, config)
    total = len(questions) + len(unanswerable) + len(ooc)
    done = 0

    def ask(texts: list[str]) -> list[Any]:
        nonlocal done
        out = []
        for text in texts:
            out.append(engine.ask(text, k=k))
            done += 1
            if progress is not None:
                progress(done, total)
        return out

    try:
        engine.warm_up()
        t = time.perf_counter()
        answers = ask([q.text for q in questions])
        seconds = time.perf_counter() - t
        impossible = ask(unanswerable)
        outside = ask(ooc)
        model = engine.stats()["model"]
    finally:
        engine.close()
    rows = [_row(q, a) for q, a in zip(questions, answers, strict=True)]
    ooc_rows = [_abstained(a) for a in impossible + outside]
    cut = halves(questions)
    ooc_cut = len(impossible) // 2, len(impossible) + len(outside) // 2
    first_ooc = ooc_rows[: ooc_cut[0]] + ooc_rows[len(impossible) : ooc_cut[1]]
    second_ooc = ooc_rows[ooc_cut[0] : len(impossible)] + ooc_rows[ooc_cut[1] :]
    result: dict[str, Any] = {
        "benchmark": "answers",
        "dataset": dataset.name,
        "corpus": source,
        "out_of_corpus": str(out_of_corpus) if out_of_corpus else None,
        "preset": model,
        "k": k,
        "date": time.strftime("%Y-%m-%d"),
        "machine": bench_machine(),
        "ms_per_answer": round(seconds * 1000 / max(len(questions), 1), 2),
        **_summary(rows, ooc_rows),
        "halves": {
            "first": _summary(rows[:cut], first_ooc),
            "second": _summary(rows[cut:], second_ooc),
        },
        "examples": [r for r in rows if not r["found"]][:20],
    }
    return result


def _open_index(dataset: Path, corpus: Path | None, config: Config) -> tuple[Engine, str]:
    if corpus is None:  # the file's own paragraphs, as `snaprag eval` indexes them
        work = eval_workdir(dataset, config)
        path, _, _ = load_collection(dataset, "test", work / "collection")
        source = f"{dataset.name} paragraphs"
    else:
        corpus = corpus.resolve()
        if not corpus.exists():
            raise QueryError(f"--corpus {corpus} does not exist; name a folder of documents")
        key = hashlib.sha1(
            f"{corpus}|{config.model or AUTO_MODEL}|{config.chunk_tokens}|"
            f"{config.chunk_overlap}".encode()
        ).hexdigest()[:12]
        work = config.cache_dir / "eval" / f"answers-{corpus.name}-{key}"
        path, source = corpus, str(corpus)
    engine = Engine(config.with_(index_dir=work / "index"))
    report = engine.ingest([path])
    if not report.ok:
        engine.close()
        raise QueryError(f"ingesting {path} failed: {report.failed[0].reason}")
    return engine, source


def _row(question: Question, answer: Any) -> dict[str, Any]:
    hits = answer.hits
    return {
        "question": question.text,
        "gold": question.answers[0],
        "found": any(contains(answer.text, g) for g in question.answers) and not _abstained(answer),
        "top1": bool(hits) and any(contains(hits[0].text, g) for g in question.answers),
        "top3": any(contains(h.text, g) for h in hits[:3] for g in question.answers),
        "abstained": _abstained(answer),
        "chars": int(answer.metrics.get("quoted_chars", len(answer.text))),
        "answer": answer.text,
    }


def _abstained(answer: Any) -> bool:
    return not answer.citations


def _summary(rows: list[dict[str, Any]], ooc: list[bool]) -> dict[str, Any]:
    n = len(rows)
    answered = [r["chars"] for r in rows if not r["abstained"]]

    def share(key: str) -> float | None:
        return round(sum(r[key] for r in rows) / n, 4) if n else None

    return {
        "questions": n,
        "answer_recall": share("found"),
        "top1": share("top1"),
        "top3": share("top3"),
        "mean_chars": round(sum(answered) / len(answered), 1) if answered else None,
        "abstained": share("abstained"),
        "out_of_corpus_questions": len(ooc),
        "out_of_corpus_abstained": round(sum(ooc) / len(ooc), 4) if ooc else None,
    }


#: the measures of a set of questions, in the order the table and the summary give them
MEASURES = (
    "questions",
    "answer_recall",
    "top1",
    "top3",
    "mean_chars",
    "abstained",
    "out_of_corpus_questions",
    "out_of_corpus_abstained",
)


def last_line(result: dict[str, Any]) -> dict[str, Any]:
    """The summary ``--json`` prints last."""
    return {k: result[k] for k in (*MEASURES, "halves")}


def print_report(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"snaprag eval --answers — {result['dataset']} over {result['corpus']} "
        f"({result['preset']}, k={result['k']})"
    )
    cols = ("questions", "answer recall", "top hit", "top 3", "mean chars", "abstained")
    for col in ("set", *cols, "out of corpus", "o.o.c. abstained"):
        table.add_column(col, justify="right")

    def cell(v: Any) -> str:
        return "—" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    parts = [("all", result), ("first half", result["halves"]["first"])]
    parts.append(("second half", result["halves"]["second"]))
    for name, s in parts:
        table.add_row(name, *(cell(s[key]) for key in MEASURES))
    console = Console()
    console.print(table)
    m = result["machine"]
    console.print(
        f"[dim]{result['ms_per_answer']} ms per answer; {m['cpu']}, {m['cpus']} CPUs, "
        f"Python {m['python']}, load average {m['load_avg_1m']} at start[/]"
    )
