"""Files -> chunks: stable ids, metadata, and bad files skipped with a reason (no Chroma needed)."""

from __future__ import annotations

from pathlib import Path

from chains.kb.ingest import Skipped, chunk_id, iter_files, load_file, source_key


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with ``text`` in its text layer, byte offsets computed so pypdf reads it strictly."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>",
        b"<</Length %d>>stream\n" % len(stream) + stream + b"\nendstream",
        b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_markdown_chunks_carry_source_title_index_hash_and_stable_ids(tmp_path: Path) -> None:
    doc = tmp_path / "brand.md"
    doc.write_text("# Brand guide\n\n" + "\n\n".join(f"Paragraph {i}. " + "word " * 60 for i in range(12)))
    first, again = load_file(doc, chunk_size=400), load_file(doc, chunk_size=400)
    assert not isinstance(first, Skipped) and not isinstance(again, Skipped)
    assert len(first.chunks) > 3 and [c.id for c in first.chunks] == [c.id for c in again.chunks]
    assert len({c.id for c in first.chunks}) == len(first.chunks)
    meta = first.chunks[2].metadata
    assert meta["source"] == source_key(doc) == str(doc.resolve()) and meta["title"] == "Brand guide"
    assert meta["chunk"] == 2 and meta["file_hash"] == first.file_hash and len(first.file_hash) == 64
    assert all(len(c.text) <= 400 for c in first.chunks)
    assert first.chunks[2].id == chunk_id(meta["source"], 2, first.chunks[2].text)


def test_an_edit_changes_only_the_ids_of_changed_chunks(tmp_path: Path) -> None:
    doc = tmp_path / "facts.txt"
    paragraphs = [f"Fact {i}: " + "detail " * 50 for i in range(6)]
    doc.write_text("\n\n".join(paragraphs))
    before = load_file(doc, chunk_size=400)
    paragraphs[-1] = "Fact 5 changed: the price is now 129 euros."
    doc.write_text("\n\n".join(paragraphs))
    after = load_file(doc, chunk_size=400)
    assert not isinstance(before, Skipped) and not isinstance(after, Skipped)
    old, new = [c.id for c in before.chunks], [c.id for c in after.chunks]
    assert old[:-1] == new[:-1] and old[-1] != new[-1] and before.file_hash != after.file_hash


def test_jsonl_and_csv_give_one_record_per_chunk_with_the_record_kept(tmp_path: Path) -> None:
    jsonl = tmp_path / "ex.jsonl"
    jsonl.write_text('{"product": "trail shoe", "ad": "Grip."}\n\n{"text": "Plain body", "title": "T"}\n')
    csv = tmp_path / "facts.csv"
    csv.write_text("sku,fact\nA1,Waterproof to 10 m\nB2,Weighs 280 g\n")
    records, rows = load_file(jsonl), load_file(csv)
    assert not isinstance(records, Skipped) and not isinstance(rows, Skipped)
    assert [c.text for c in records.chunks] == ["product: trail shoe\nad: Grip.", "Plain body"]
    assert records.chunks[1].metadata["title"] == "T" and records.chunks[1].metadata["line"] == 3
    assert '"sku": "B2"' in rows.chunks[1].metadata["aigc:record"]
    assert rows.chunks[1].text == "sku: B2\nfact: Weighs 280 g"


def test_pdf_text_layer_is_read(tmp_path: Path) -> None:
    pdf = tmp_path / "standard.pdf"
    pdf.write_bytes(minimal_pdf("Students compare fractions with unlike denominators."))
    loaded = load_file(pdf)
    assert not isinstance(loaded, Skipped), loaded
    assert "unlike denominators" in loaded.chunks[0].text and loaded.chunks[0].metadata["page"] == 1


def test_bad_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    (tmp_path / "empty.md").write_text("  \n\n")
    (tmp_path / "blob.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "deck.pptx").write_bytes(b"PK")
    (tmp_path / "big.txt").write_text("x" * 2000)
    (tmp_path / "broken.jsonl").write_text('{"a": 1}\n{oops\n')
    (tmp_path / "fake.pdf").write_bytes(b"%PDF-1.4 not really")
    (tmp_path / ".hidden.md").write_text("# secret")
    reasons = {}
    for item in iter_files([tmp_path, tmp_path / "missing.md"]):
        result = item if isinstance(item, Skipped) else load_file(item, max_bytes=1000)
        assert isinstance(result, Skipped), result
        reasons[Path(result.path).name] = result.reason
    assert reasons.pop("empty.md") == "empty: no text"
    assert "NUL" in reasons.pop("blob.txt") and "UTF-8" in reasons.pop("latin1.txt")
    assert reasons.pop("deck.pptx").startswith("unsupported type .pptx (supported: .md")
    assert reasons.pop("big.txt").startswith("too large")
    assert reasons.pop("broken.jsonl").startswith("line 2 is not JSON")
    assert "PDF" in reasons.pop("fake.pdf") and reasons.pop("missing.md") == "not found"
    assert reasons == {}  # the hidden file is not even looked at
