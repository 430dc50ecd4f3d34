"""Knowledge bases in a real embedded Chroma (temp dir): idempotent re-ingest, updates, model checks, retrieval."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.example_selectors import BaseExampleSelector
from langchain_core.retrievers import BaseRetriever

from chains.kb import (
    EmbeddingMismatch,
    InvalidKBRequest,
    KnowledgeBase,
    UnknownCollection,
    connect,
    delete_collection,
    list_collections,
)

FACTS = {
    "shoe.md": "# Trailblazer shoe\n\nThe Trailblazer shoe weighs 280 grams and has a Vibram outsole.",
    "shoe_copy.md": "# Trailblazer again\n\nThe Trailblazer shoe weighs 280 grams, with a Vibram outsole.",
    "shoe_echo.md": "# Trailblazer echo\n\nWeighing 280 grams, the Trailblazer shoe has a Vibram sole.",
    "jacket.md": "# Rain jacket\n\nThe Storm jacket is waterproof and packs into its own pocket.",
    "tone.md": "# Tone of voice\n\nWe write warmly and directly, and never use exclamation marks.",
}


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in FACTS.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture
def kb(tmp_path: Path) -> KnowledgeBase:
    return KnowledgeBase.open(connect(tmp_path / "store"), "products")


def test_reingest_is_idempotent_and_an_edit_replaces_stale_chunks(kb: KnowledgeBase, docs: Path) -> None:
    first = kb.ingest([docs])
    assert len(first.added) == 5 and first.chunks_written == 5 and kb.count() == 5
    again = kb.ingest([docs, docs / "tone.md"])  # the same file twice in one call too
    assert len(again.unchanged) == 6 and again.chunks_written == 0 and kb.count() == 5
    long = "\n\n".join(f"Rule {i}: " + "always be kind " * 30 for i in range(5))
    (docs / "tone.md").write_text(f"# Tone of voice\n\n{long}")
    edited = kb.ingest([docs / "tone.md"], chunk_size=300)
    assert edited.updated == [str((docs / "tone.md").resolve())] and edited.chunks_removed == 1
    tone = next(s for s in kb.sources() if s.source.endswith("tone.md"))
    assert tone.chunks == edited.chunks_written > 1 and kb.count() == 4 + tone.chunks
    (docs / "tone.md").write_text(FACTS["tone.md"])
    kb.ingest([docs / "tone.md"])
    assert kb.count() == 5 and {p.text for p in kb.search("exclamation marks", k=1)} == {FACTS["tone.md"]}


def test_an_edit_keeps_unchanged_chunks_and_refreshes_their_file_hash(kb: KnowledgeBase, tmp_path: Path) -> None:
    doc = tmp_path / "facts.txt"
    parts = [f"Fact {i}: " + "detail " * 50 for i in range(4)]
    doc.write_text("\n\n".join(parts))
    kb.ingest([doc], chunk_size=400)
    parts[-1] = "Fact 3 changed: " + "other " * 50
    doc.write_text("\n\n".join(parts))
    summary = kb.ingest([doc], chunk_size=400)
    assert summary.chunks_written == 1 and summary.chunks_removed == 1 and summary.chunks_kept == 3
    hashes = {m["file_hash"] for m in kb.collection.get(include=["metadatas"])["metadatas"]}
    assert len(hashes) == 1  # the kept chunks carry the new file's hash


def test_remove_one_source_and_delete_a_collection(kb: KnowledgeBase, docs: Path) -> None:
    kb.ingest([docs])
    assert kb.remove(docs / "jacket.md") == 1 and kb.remove(docs / "jacket.md") == 0 and kb.count() == 4
    assert [c.name for c in list_collections(kb.client)] == ["products"]
    assert delete_collection(kb.client, "products") == 4 and list_collections(kb.client) == []
    with pytest.raises(UnknownCollection, match="no collection 'products'"):
        delete_collection(kb.client, "products")


def test_collection_records_the_model_and_refuses_another(kb: KnowledgeBase, docs: Path) -> None:
    kb.ingest([docs])
    (info,) = list_collections(kb.client)
    assert (info.model, info.dimension, info.chunks) == ("sentence-transformers/all-MiniLM-L6-v2", 384, 5)
    with pytest.raises(EmbeddingMismatch, match=r"built with sentence-transformers/all-MiniLM-L6-v2 \(384"):
        KnowledgeBase.open(kb.client, "products", model="BAAI/bge-base-en-v1.5", dimension=768)
    kb.client.create_collection("foreign", embedding_function=kb.collection._embedding_function)
    with pytest.raises(EmbeddingMismatch, match="records no embedding model"):
        KnowledgeBase.open(kb.client, "foreign")
    from chromadb.utils.embedding_functions import DefaultEmbeddingFunction  # built, never called (it downloads)

    kb.client.create_collection("chroma-default", embedding_function=DefaultEmbeddingFunction())
    with pytest.raises(EmbeddingMismatch, match="conflict: new: aigc-minilm-l6-v2 vs persisted: default"):
        KnowledgeBase.open(kb.client, "chroma-default")


def test_unknown_and_bad_collection_names(kb: KnowledgeBase) -> None:
    with pytest.raises(UnknownCollection, match=r"no collection 'product' \(did you mean 'products'\?\)"):
        KnowledgeBase.open(kb.client, "product", create=False)
    with pytest.raises(InvalidKBRequest, match="collection name 'a b'"):
        KnowledgeBase.open(kb.client, "a b")


def test_retriever_similarity_mmr_and_filters(kb: KnowledgeBase, docs: Path) -> None:
    kb.ingest([docs])
    retriever = kb.as_retriever(k=2)
    assert isinstance(retriever, BaseRetriever)
    plain = retriever.invoke("How much does the Trailblazer shoe weigh?")
    assert all("280 grams" in d.page_content for d in plain)
    top = plain[0].metadata
    assert top["id"] == plain[0].id and top["source"].endswith(".md") and 0.5 < top["score"] <= 1.0
    assert plain[0].metadata["score"] >= plain[1].metadata["score"]
    diverse = kb.as_retriever(k=2, mmr=True, lambda_mult=0.3).invoke("How much does the Trailblazer shoe weigh?")
    assert "280 grams" in diverse[0].page_content and "280 grams" not in diverse[1].page_content
    only = kb.as_retriever(k=3, filter={"title": "Rain jacket"}).invoke("shoe weight")
    assert [d.metadata["title"] for d in only] == ["Rain jacket"]
    both = kb.search("shoe", k=5, where={"$and": [{"chunk": 0}, {"title": {"$in": ["Tone of voice"]}}]})
    assert [p.metadata["title"] for p in both] == ["Tone of voice"]
    with pytest.raises(InvalidKBRequest, match="bad filter"):
        kb.search("shoe", where={"$bogus": 1})


def test_example_selector_returns_the_nearest_records(kb: KnowledgeBase, tmp_path: Path) -> None:
    examples = tmp_path / "ads.jsonl"
    examples.write_text(
        '{"product": "trail running shoe", "ad": "Grip that never quits."}\n'
        '{"product": "waterproof rain jacket", "ad": "Stay dry, stay moving."}\n'
    )
    (tmp_path / "guide.md").write_text("# Hiking boots guide\n\nHiking boots need ankle support.")
    kb.ingest([examples, tmp_path / "guide.md"])  # a passage nearer the query than any example: never chosen
    selector = kb.example_selector(k=1, input_keys=["product"])
    assert isinstance(selector, BaseExampleSelector)
    assert selector.select_examples({"product": "hiking boots"}) == [
        {"product": "trail running shoe", "ad": "Grip that never quits."}
    ]
    added = {"product": "insulated winter parka", "ad": "Warmth, weighed in grams."}
    assert selector.add_example(added) == selector.add_example(added) and kb.count() == 4
    assert selector.select_examples({"product": "down coat for snow"}) == [added]
    assert len(kb.example_selector(k=5).select_examples({"product": "boots"})) == 3


def test_a_collection_reopens_in_another_process_without_chroma_s_default_embedder(
    kb: KnowledgeBase, docs: Path, tmp_path: Path
) -> None:
    kb.ingest([docs])
    code = (
        "import chromadb, sys; from chains.kb.embeddings import MiniLMFunction\n"
        "from chromadb.config import Settings\n"
        f"c = chromadb.PersistentClient(path={str(tmp_path / 'store')!r},\n"
        "    settings=Settings(anonymized_telemetry=False))\n"
        "col = c.get_collection('products')\n"  # no function passed: the registered one is found by name
        "print(type(col.configuration['embedding_function']).__name__, col.count())\n"  # what queries embed with
    )
    env = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "MiniLMFunction 5"
