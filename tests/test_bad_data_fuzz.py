"""Fuzzing the TXT and VOC readers and the image check: a reader returns records that pass `assert_valid` or
raises DatasetError with a one-line message; the image check returns a size or skips. Nothing else, ever.

Examples are kept few (about 10 s for the file); runs with 1500 examples each found nothing more.
"""
from xml.sax.saxutils import escape

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from src.data.formats import parse_txt, parse_voc
from src.data.image_io import MAX_IMAGE_PIXELS
from src.data.records import DatasetError, Record, SkipReport, check_image
from test_bad_data import GOOD, assert_valid, encoded

FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

numbers = st.one_of(st.integers(-10**6, 10**6).map(str), st.floats().map(repr),
                    st.sampled_from(["nan", "-inf", "1e400", "", "x", "1_0", "0x10", "-0", "4294967296"]))
paths = st.one_of(st.sampled_from(["a.jpg", "sub/b.jpg", "./a.jpg", "../a.jpg", "/etc/passwd", "#x", "sub/../a.jpg",
                                   "sub", "."]), st.text(max_size=8))
box_tokens = st.lists(numbers, min_size=3, max_size=6).map(",".join)
txt_lines = st.tuples(paths, st.lists(box_tokens, max_size=3)).map(lambda t: " ".join([t[0], *t[1]]))
txt_files = st.one_of(st.lists(txt_lines, max_size=6).map(lambda ls: "\n".join(ls).encode("utf-8", "replace")),
                      st.binary(max_size=120))
class_lists = st.sampled_from([None, ["cat"], ["cat", "dog", "bird"]])


def _reader_result(read, image_dir):
    try:
        parsed = read()
    except DatasetError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert_valid(parsed, image_dir)


@FUZZ
@given(content=txt_files, classes=class_lists)
def test_fuzzed_txt_files(tmp_path_factory, content, classes):
    root = tmp_path_factory.mktemp("txt")
    (root / "a.txt").write_bytes(content)
    _reader_result(lambda: parse_txt(str(root / "a.txt"), str(root), classes), str(root))


tags = st.sampled_from(["annotation", "filename", "size", "width", "height", "object", "name", "difficult",
                        "bndbox", "xmin", "ymin", "xmax", "ymax", "junk"])
texts = st.one_of(numbers, st.sampled_from(["cat", "dog", "a.jpg", "../a.jpg", "/etc/passwd"]), st.text(max_size=6))
elements = st.recursive(st.tuples(tags, texts, st.just([])),
                        lambda children: st.tuples(tags, texts, st.lists(children, max_size=4)), max_leaves=12)


def _xml(element):
    tag, text, children = element
    return f"<{tag}>{escape(text)}{''.join(_xml(c) for c in children)}</{tag}>"


xml_files = st.one_of(
    st.lists(elements, max_size=5).map(lambda cs: _xml(("annotation", "", cs)).encode("utf-8", "replace")),
    st.tuples(elements, st.integers(0, 200)).map(lambda t: _xml(t[0]).encode("utf-8", "replace")[:t[1]]),
    st.binary(max_size=80))


@FUZZ
@given(files=st.lists(st.tuples(st.sampled_from(["1.xml", "2.xml", "a.xml", "007.xml"]), xml_files), max_size=3),
       classes=st.sampled_from([None, ["cat", "dog"]]))
def test_fuzzed_voc_files(tmp_path_factory, files, classes):
    split = tmp_path_factory.mktemp("voc")
    for name, content in files:
        (split / name).write_bytes(content)
    _reader_result(lambda: parse_voc(str(split), classes), str(split))


@settings(max_examples=60, deadline=None, database=None)
@given(base=st.sampled_from([GOOD, encoded(".png"), encoded(".bmp", 8, 6)]),
       edits=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=6), cut=st.integers(0, 2000))
def test_fuzzed_image_bytes_never_raise(base, edits, cut):
    data = bytearray(base[:cut] if cut else base)
    for position, value in edits:
        if position < len(data):
            data[position] = value
    record = Record(img_id=1, path="/x.jpg", file_name="x.jpg", boxes=np.array([[1, 1, 9, 9]], np.float32),
                    labels=np.zeros(1, np.int32), iscrowd=np.zeros(1, bool), source="a.txt:1")
    report = SkipReport(printer=lambda line: None)
    size = check_image(record, bytes(data), report)
    assert size is None or (size == (record.height, record.width) and size[0] * size[1] <= MAX_IMAGE_PIXELS)
    assert (size is None) == (report.images_skipped == 1)
