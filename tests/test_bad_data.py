"""Bad data in COCO, VOC and TXT form: each problem is a counted skip naming the file and the line or image id, or,
when nothing usable is left, one clear error. Never a traceback, never a silent wrong result.

Every case is written in all three formats by `write_dataset` (one image list, three annotation files), so that a
reader that handles a case differently from the others fails here.
"""
import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from xml.sax.saxutils import escape

import cv2
import numpy as np
import pytest

from src.data.formats import parse_coco, parse_txt, parse_voc
from src.data.image_io import MAX_IMAGE_PIXELS, image_header
from src.data.records import DatasetError, fits_int64, iter_checked_images

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = ["cat", "dog"]
FORMATS = ["coco", "voc", "txt"]
UNKNOWN_COCO_ID, UNKNOWN_TXT_INDEX = 99, -1  # what an unknown class name becomes in COCO and TXT


# -- images ----------------------------------------------------------------------------------------------------------
def encoded(ext, width=40, height=30):
    img = np.full((height, width, 3), 120, np.uint8)
    img[::3] = 40  # some structure, so that the encoders do real work
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


def huge_jpeg(height, width):
    """A 16x16 JPEG whose frame header claims height x width: a few hundred bytes that decode to height*width*3."""
    data = bytearray(encoded(".jpg", 16, 16))
    i = 2
    while data[i + 1] not in (0xC0, 0xC1, 0xC2):
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    data[i + 5:i + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def huge_png(height, width):
    """A 16x16 PNG whose IHDR (with its CRC fixed) claims height x width."""
    data = bytearray(encoded(".png", 16, 16))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


GOOD = encoded(".jpg")
FOLDER = "folder"  # as image data: make a folder of that name instead of a file


# -- one dataset, three formats --------------------------------------------------------------------------------------
def _num(v):
    return f"{v:g}"


def write_dataset(fmt, root, images, classes=CLASSES):
    """Write `images` [(file name, bytes | None | FOLDER, [(x1, y1, x2, y2, class name)])] in `fmt`.

    Image k (1-based) is COCO image id k, VOC file k.xml or TXT line k. Returns (parse(), source(k)): the reader
    call and the source name that messages give for image k.
    """
    image_dir = os.path.join(root, "train" if fmt == "voc" else "images")
    os.makedirs(image_dir, exist_ok=True)
    for name, data, _ in images:
        path = os.path.join(image_dir, name)
        if data is FOLDER:
            os.makedirs(path, exist_ok=True)
        elif data is not None and os.path.dirname(os.path.abspath(path)) == os.path.abspath(image_dir):
            with open(path, "wb") as f:
                f.write(data)
    if fmt == "coco":
        anns = [{"id": len(images) * 10 + j, "image_id": k, "iscrowd": 0, "bbox": [x1, y1, x2 - x1, y2 - y1],
                 "category_id": classes.index(c) + 1 if c in classes else UNKNOWN_COCO_ID}
                for k, (_, _, boxes) in enumerate(images, 1) for j, (x1, y1, x2, y2, c) in enumerate(boxes, 1)]
        doc = {"images": [{"id": k, "file_name": name} for k, (name, _, _) in enumerate(images, 1)],
               "annotations": anns, "categories": [{"id": i + 1, "name": c} for i, c in enumerate(classes)]}
        with open(os.path.join(root, "a.json"), "w") as f:
            json.dump(doc, f)
        return (lambda: parse_coco(os.path.join(root, "a.json"), image_dir)), (lambda k: f"a.json (image id {k})")
    if fmt == "voc":
        for k, (name, _, boxes) in enumerate(images, 1):
            objects = "".join(f"<object><name>{escape(c)}</name><bndbox><xmin>{_num(x1 + 1)}</xmin><ymin>"
                              f"{_num(y1 + 1)}</ymin><xmax>{_num(x2)}</xmax><ymax>{_num(y2)}</ymax></bndbox></object>"
                              for x1, y1, x2, y2, c in boxes)
            with open(os.path.join(image_dir, f"{k}.xml"), "w") as f:
                f.write(f"<annotation><filename>{escape(name)}</filename>{objects}</annotation>")
        return (lambda: parse_voc(image_dir, classes)), (lambda k: f"train/{k}.xml")
    lines = []
    for name, _, boxes in images:
        tokens = [",".join(_num(v) for v in (x1, y1, x2, y2)) + f",{classes.index(c) if c in classes else UNKNOWN_TXT_INDEX}"
                  for x1, y1, x2, y2, c in boxes]
        lines.append(" ".join([name] + tokens))
    with open(os.path.join(root, "a.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return (lambda: parse_txt(os.path.join(root, "a.txt"), image_dir, classes)), (lambda k: f"a.txt:{k}")


def convert(parse):
    """What the MindRecord writer does with the data: (records it keeps, the report, its messages as one text)."""
    parsed = parse()
    parsed.report.printer = lambda line: None
    kept = [record for record, _ in iter_checked_images(parsed)]
    assert_valid(parsed)
    return kept, parsed.report, "\n".join(parsed.report.messages)


def assert_valid(parsed, image_dir=None):
    """Records that the writer may store: finite positive boxes, labels in range, unique ids and files inside."""
    num_classes = len(parsed.class_names)
    assert num_classes == len(parsed.category_ids) == len(set(parsed.class_names)) > 0
    assert all(isinstance(n, str) for n in parsed.class_names)
    ids = [r.img_id for r in parsed.records]
    assert len(set(ids)) == len(ids) and all(type(i) is int and fits_int64(i) for i in ids)
    assert len({r.path for r in parsed.records}) == len(parsed.records)
    for r in parsed.records:
        n = len(r.boxes)
        assert r.boxes.dtype == np.float32 and r.boxes.shape == (n, 4) and np.isfinite(r.boxes).all()
        assert (r.boxes[:, 2] > r.boxes[:, 0]).all() and (r.boxes[:, 3] > r.boxes[:, 1]).all()
        assert r.labels.dtype == np.int32 and r.labels.shape == (n,)
        assert ((r.labels >= 0) & (r.labels < num_classes)).all()
        assert r.iscrowd.dtype == bool and r.iscrowd.shape == (n,)
        assert r.areas is None or r.areas.shape == (n,)
        assert isinstance(r.width, int) and isinstance(r.height, int) and r.width >= 0 and r.height >= 0
        assert r.source and os.path.isabs(r.path)
        if image_dir is not None:
            root = os.path.realpath(image_dir)
            assert os.path.commonpath([root, r.path]) == root and r.path != root


# -- image files -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_image_file_problems_are_counted_skips(tmp_path, fmt):
    rng = np.random.default_rng(0)
    images = [
        ("good.jpg", GOOD, [(2, 3, 20, 25, "cat")]),
        ("corrupt.jpg", GOOD[:200] + rng.integers(0, 256, 600, dtype=np.uint8).tobytes(), []),
        ("truncated.jpg", GOOD[:len(GOOD) // 2], []),
        ("missing.jpg", None, []),
        ("empty.jpg", b"", []),
        ("png_named.jpg", encoded(".png", 50, 20), [(1, 1, 10, 10, "dog")]),   # fine: decoded by content
        ("huge.jpg", huge_jpeg(20000, 20000), []),
        ("huge_png.jpg", huge_png(20000, 20000), []),
        ("folder.jpg", FOLDER, []),
    ]
    parse, source = write_dataset(fmt, str(tmp_path), images)
    kept, report, text = convert(parse)
    assert [r.source for r in kept] == [source(1), source(6)]
    assert (kept[1].width, kept[1].height) == (50, 20)
    too_large = "20000x20000 is 400 megapixels, more than the limit of 67; downscale it and its boxes"
    for expected in [
        f"{source(2)}: skipped image: unreadable image (corrupt.jpg: corrupt or truncated JPEG data)",
        f"{source(3)}: skipped image: unreadable image (truncated.jpg: corrupt or truncated JPEG data)",
        f"{source(4)}: skipped image: missing image ({tmp_path}",
        f"{source(5)}: skipped image: unreadable image (empty.jpg: empty file)",
        f"{source(7)}: skipped image: image too large (huge.jpg: {too_large})",
        f"{source(8)}: skipped image: image too large (huge_png.jpg: {too_large})",
        f"{source(9)}: skipped image: missing image (", "folder.jpg is a folder)",
    ]:
        assert expected in text, expected
    assert report.summary(9) == ("skipped 7 of 9 images (3 unreadable image, 2 missing image, 2 image too large); "
                                 "dropped 0 boxes; clipped 0 boxes")


def test_image_header_gives_the_size_without_decoding():
    for ext in (".jpg", ".png", ".bmp"):
        kind, size = image_header(encoded(ext, 37, 21))
        assert size == (21, 37), ext
    assert image_header(huge_jpeg(20000, 30000)) == ("JPEG", (20000, 30000))
    assert image_header(b"GIF89a....") == ("other", None)
    assert image_header(b"\xff\xd8\xff") == ("JPEG", None)            # no frame header: left to the decoder
    assert MAX_IMAGE_PIXELS == 8192 * 8192


def test_a_huge_image_is_rejected_without_decoding_it(tmp_path):
    """Peak memory of a conversion over 20000x20000 images (1.2 GB each if decoded) stays that of a small one."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {REPO!r})
        import src
        from src.data.formats import parse_txt
        from src.data.records import iter_checked_images
        parsed = parse_txt({str(tmp_path / "a.txt")!r}, {str(tmp_path / "images")!r}, ["cat"])
        kept = list(iter_checked_images(parsed))
        # VmHWM is this program's own peak; ru_maxrss would include the forked parent's (pytest's) pages.
        with open("/proc/self/status") as f:
            peak_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        print(len(kept), parsed.report.skip_reasons["image too large"], peak_kb // 1024)
    """)
    write_dataset("txt", str(tmp_path), [("huge.jpg", huge_jpeg(20000, 20000), [(1, 1, 5, 5, "cat")]),
                                         ("huge.png", huge_png(20000, 20000), []), ("ok.jpg", GOOD, [])],
                  classes=["cat"])
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    kept, too_large, peak_mb = (int(v) for v in proc.stdout.split())
    assert (kept, too_large) == (1, 2)
    assert peak_mb < 300, f"peak RSS {peak_mb} MB"


# -- boxes and classes -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_bad_boxes_and_unknown_classes_are_dropped_or_clipped(tmp_path, fmt):
    nan = float("nan")
    boxes = [(2, 3, 20, 25, "cat"),
             (30, 20, 60, 50, "dog"),        # partly outside the 40x30 image: clipped, counted
             (50, 40, 60, 50, "cat"),        # wholly outside: dropped
             (5, 5, 5, 10, "cat"),           # zero width
             (10, 10, 5, 5, "dog"),          # inverted
             (nan, 1, 5, 5, "cat"),
             (1, 1, 9, 9, "horse"),          # unknown class
             (-0.5, 0, 10, 10.5, "cat")]     # rounding noise: clipped silently
    parse, source = write_dataset(fmt, str(tmp_path), [("a.jpg", GOOD, boxes)])
    kept, report, text = convert(parse)
    np.testing.assert_allclose(kept[0].boxes, [[2, 3, 20, 25], [30, 20, 40, 30], [0, 0, 10, 10.5]])
    assert kept[0].labels.tolist() == [0, 1, 0]
    assert report.drop_reasons == {"zero-area or inverted": 2, "not a finite number": 1, "unknown class": 1,
                                   "outside image": 1}
    assert report.boxes_clipped == 1
    what = {"coco": ["annotation id 14", "annotation id 15", "annotation id 16", "annotation id 17"],
            "voc": ["object 4 (cat)", "object 5 (dog)", "object 6 (cat)", "object 7"],
            "txt": ["box 4", "box 5", "box 6", "box 7"]}[fmt]
    unknown = {"coco": f"category id {UNKNOWN_COCO_ID}", "voc": "'horse'",
               "txt": f"class index {UNKNOWN_TXT_INDEX}, 2 classes"}[fmt]
    for expected in [f"{source(1)}: dropped box: zero-area or inverted ({what[0]}: x1=5 y1=5 x2=5 y2=10)",
                     f"{source(1)}: dropped box: zero-area or inverted ({what[1]}: x1=10 y1=10 x2=5 y2=5)",
                     f"{source(1)}: dropped box: not a finite number ({what[2]}: x1=nan",
                     f"{source(1)}: dropped box: unknown class ({what[3]}: {unknown})",
                     f"{source(1)}: dropped box: outside image (40x30 image a.jpg)",
                     f"{source(1)}: clipped box to the image (40x30 image a.jpg)"]:
        assert expected in text, expected


# -- paths -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_paths_that_leave_the_image_folder_are_never_read(tmp_path, fmt):
    images = [("ok.jpg", GOOD, []), ("../../etc/passwd", None, []), ("/etc/passwd", None, []),
              ("sub/../../ok.jpg", None, [])]
    parse, source = write_dataset(fmt, str(tmp_path), images)
    kept, report, text = convert(parse)
    assert [r.source for r in kept] == [source(1)]
    for k, (name, _, _) in enumerate(images[1:], 2):
        assert f"{source(k)}: skipped image: path outside image folder ({name})" in text
    assert report.skip_reasons == {"path outside image folder": 3}


# -- duplicates ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_an_image_listed_twice(tmp_path, fmt):
    """Same boxes: a harmless repeat, kept once. Other boxes: which are right is unknown, so neither is used."""
    cat, dog = (2, 3, 20, 25, "cat"), (5, 5, 30, 28, "dog")
    images = [("a.jpg", GOOD, [cat, dog]), ("b.jpg", GOOD, [cat]), ("a.jpg", GOOD, [dog, cat]),
              ("b.jpg", GOOD, [dog]), ("c.jpg", GOOD, [])]
    parse, source = write_dataset(fmt, str(tmp_path), images)
    kept, report, text = convert(parse)
    assert [r.source for r in kept] == [source(1), source(5)]
    assert f"{source(3)}: skipped image: duplicate image (a.jpg is already listed at {source(1)} with the same boxes)" \
        in text
    for k, other in ((2, 4), (4, 2)):
        assert (f"{source(k)}: skipped image: duplicate image (b.jpg is also listed at {source(other)} with other "
                "boxes; not knowing which are right, none is used)") in text
    assert report.skip_reasons == {"duplicate image": 3}


def test_coco_duplicate_image_ids(tmp_path):
    """An id listed twice for one file is kept once; an id shared by two files cannot carry its annotations."""
    (tmp_path / "img").mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (tmp_path / "img" / name).write_bytes(GOOD)
    doc = {"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 1, "file_name": "a.jpg"},
                      {"id": 2, "file_name": "b.jpg"}, {"id": 2, "file_name": "c.jpg"}],
           "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
                           {"id": 6, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5]}],
           "categories": [{"id": 1, "name": "cat"}]}
    (tmp_path / "a.json").write_text(json.dumps(doc))
    kept, report, text = convert(lambda: parse_coco(str(tmp_path / "a.json"), str(tmp_path / "img")))
    assert [(r.img_id, len(r.boxes)) for r in kept] == [(1, 1)]
    assert "a.json (image id 1): skipped image: duplicate image id (a.jpg is listed again under the same id)" in text
    for name in ("b.jpg", "c.jpg"):
        assert (f"a.json (image id 2): skipped image: duplicate image id ({name}; the id is shared by b.jpg, c.jpg, "
                "so its annotations cannot be assigned)") in text
    assert report.summary(4).startswith("skipped 3 of 4 images (3 duplicate image id); dropped 0 boxes")


# -- malformed annotation files --------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, message", [
    ('{"images": [\n  {"id": 1,, }\n]}', r"a\.json:2:12: malformed JSON: Expecting property name"),
    ("[" * 100000, r"a\.json: malformed JSON: nested too deeply"),
    ('{"images": [{"id": 1' + "0" * 5000 + "}]}", r"a\.json: malformed JSON: Exceeds the limit \(4300 digits\)"),
    ("[1, 2]", r"a\.json: the top level should be an object"),
    (b'{"images": "\xff"}', r"a\.json: not UTF-8 text \(byte 12\)"),
    ('{"images": [], "categories": [{"id": 1, "name": "cat"}]}', r"a\.json: 'images' is empty"),
], ids=["syntax", "deep", "digits", "list", "not_utf8", "no_images"])
def test_unreadable_coco_json_is_one_error(tmp_path, text, message):
    path = tmp_path / "a.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(DatasetError, match=message):
        parse_coco(str(path), str(tmp_path))


def test_coco_numbers_out_of_range_are_skipped(tmp_path):
    (tmp_path / "a.jpg").write_bytes(GOOD)
    doc = {"images": [{"id": 2**70, "file_name": "a.jpg"}, {"id": 1, "file_name": "a.jpg"}],
           "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10**400, 5], "area": 10**400},
                           {"id": 8, "image_id": 1, "category_id": 1, "bbox": [1, 1, 1e300, 5]}],
           "categories": [{"id": 1, "name": "cat"}]}
    (tmp_path / "a.json").write_text(json.dumps(doc))
    kept, report, text = convert(lambda: parse_coco(str(tmp_path / "a.json"), str(tmp_path)))
    assert [r.img_id for r in kept] == [1]
    assert ("a.json (image #1): skipped image: bad image entry (needs an integer 'id' (64-bit) and a 'file_name')"
            in text)
    assert "a.json (image id 1): dropped box: malformed box (annotation id 7: bbox [1, 1, 1000" in text
    # 1e300 is a float, but not one float32 (what the MindRecord stores) can hold
    assert "a.json (image id 1): dropped box: not a finite number (annotation id 8: x1=1 y1=1 x2=inf" in text


def test_voc_xml_problems(tmp_path):
    split = tmp_path / "train"
    split.mkdir()
    (split / "a.jpg").write_bytes(GOOD)
    obj = "<object><name>cat</name><bndbox><xmin>3</xmin><ymin>4</ymin><xmax>20</xmax><ymax>25</ymax></bndbox></object>"
    (split / "1.xml").write_text(f"<annotation><filename>a.jpg</filename>{obj}</annotation>")           # no <size>
    (split / "2.xml").write_text("<annotation>\n<filename>a.jpg</filename>\n<object></annotation>")
    (split / "3.xml").write_text(f"<annotation><filename>b.jpg</filename>{obj.replace('>3<', '>three<')}"
                                 "<size><width>40</width><height>30</height></size></annotation>")
    (split / "4.xml").write_bytes(b"\x00\x01binary")
    (split / "b.jpg").write_bytes(GOOD)
    kept, report, text = convert(lambda: parse_voc(str(split), ["cat"]))
    assert [(r.source, r.width, r.height, len(r.boxes)) for r in kept] == [("train/1.xml", 40, 30, 1),
                                                                          ("train/3.xml", 40, 30, 0)]
    assert "train/2.xml: skipped image: bad XML (line 3, column 11: mismatched tag)" in text
    assert "train/3.xml: dropped box: malformed box (object 1 (cat))" in text
    assert "train/4.xml: skipped image: bad XML (line 1, column 1: not well-formed (invalid token))" in text
    assert report.sizes_corrected == 0


def test_txt_line_problems(tmp_path):
    (tmp_path / "a.jpg").write_bytes(GOOD)
    lines = ["\ufeffa.jpg 2,3,20,25,0",      # a byte-order mark from a Windows editor: ignored
             "a.jpg 1,2,3,4",                # four numbers
             "a.jpg a,b,c,d,0",              # text where numbers belong
             "a.jpg 1,2,3,4,1.5",            # a class that is not a whole number
             "a.jpg 1,2,3,4,0,9"]            # six fields
    (tmp_path / "a.txt").write_bytes("\n".join(lines).encode() + b"\na.jpg \xff\xfe\n")
    kept, report, text = convert(lambda: parse_txt(str(tmp_path / "a.txt"), str(tmp_path), ["cat"]))
    assert [r.source for r in kept] == ["a.txt:1"]
    for expected in ["a.txt:2: skipped image: malformed line ('1,2,3,4' has 4 fields, expected x1,y1,x2,y2,"
                     "class_index)",
                     "a.txt:3: skipped image: malformed line ('a,b,c,d,0' is not x1,y1,x2,y2,class_index numbers)",
                     "a.txt:4: skipped image: malformed line ('1,2,3,4,1.5' has a class index that is not a whole",
                     "a.txt:5: skipped image: malformed line ('1,2,3,4,0,9' has 6 fields",
                     "a.txt:6: skipped image: malformed line (not UTF-8 text)"]:
        assert expected in text, expected


def test_txt_without_class_names_refuses_an_absurd_class_index(tmp_path):
    (tmp_path / "a.txt").write_text("a.jpg 1,1,5,5,0\na.jpg 1,1,5,5,2000000000\n")
    with pytest.raises(DatasetError, match=r"a\.txt:2: class index 2000000000 with no class names given; pass the "
                                           r"names with --classes"):
        parse_txt(str(tmp_path / "a.txt"), str(tmp_path), None)


# -- empty sets ------------------------------------------------------------------------------------------------------
def test_an_empty_dataset_is_one_error(tmp_path):
    (tmp_path / "empty.txt").write_text("# only a comment\n\n")
    with pytest.raises(DatasetError, match=r"empty\.txt lists no images \(it is empty or holds only comments\)"):
        parse_txt(str(tmp_path / "empty.txt"), str(tmp_path), CLASSES)
    (tmp_path / "voc").mkdir()
    with pytest.raises(DatasetError, match=r"no \.xml annotation files in .*voc"):
        parse_voc(str(tmp_path / "voc"), CLASSES)
    (tmp_path / "a.json").write_text('{"images": [], "annotations": [], "categories": [{"id": 1, "name": "cat"}]}')
    with pytest.raises(DatasetError, match=r"a\.json: 'images' is empty"):
        parse_coco(str(tmp_path / "a.json"), str(tmp_path))


def test_nothing_usable_stops_the_real_entry_point_with_one_line(tmp_path):
    write_dataset("txt", str(tmp_path), [("gone.jpg", None, [(1, 1, 5, 5, "cat")]), ("empty.jpg", b"", [])])
    proc = subprocess.run(
        [sys.executable, "train.py", "--dataset", "other", "--image_dir", str(tmp_path / "images"), "--anno_path",
         str(tmp_path / "a.txt"), "--eval_anno_path", str(tmp_path / "a.txt"), "--classes", "cat", "dog",
         "--mindrecord_dir", str(tmp_path / "mr"), "--only_create_dataset", "True"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"error: no usable image in {tmp_path / 'a.txt'}: skipped 2 of 2 images (1 missing image, "
                      "1 unreadable image); dropped 0 boxes; clipped 0 boxes"], proc.stderr
    assert "a.txt:1: skipped image: missing image" in proc.stderr
    assert "a.txt:2: skipped image: unreadable image (empty.jpg: empty file)" in proc.stderr
