"""Dataset readers: fixed expected boxes per format, every bad-input case, and format equivalence."""
import json
import os

import cv2
import numpy as np
import pytest

from src.data.formats import collect_voc_classes, parse_coco, parse_txt, parse_voc
from src.data.records import (DatasetError, Record, SkipReport, check_image, iter_checked_images,
                              resolve_image_path, to_coco_gt)

CLASSES = ["cat", "dog", "bird"]
# One small set, 0-based xyxy pixels: file name -> (width, height, [(x1, y1, x2, y2, label, crowd)])
SET = {
    "1.jpg": (40, 30, [(2, 3, 20, 25, 0, False), (10, 5, 30, 28, 1, False)]),
    "2.jpg": (50, 40, [(0, 0, 50, 40, 2, False), (5.5, 6.25, 12, 20, 0, True)]),
    "3.jpg": (32, 32, []),                                  # background only
}


def write_jpg(path, width, height):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img = np.full((height, width, 3), 127, np.uint8)
    img[::4] = 30  # some structure, so it is a real image
    assert cv2.imwrite(str(path), img)


def write_images(folder, files=SET):
    for name, (w, h, _) in files.items():
        write_jpg(os.path.join(folder, name), w, h)


def write_coco(path, files=SET, category_ids=(1, 2, 3), image_ids=None, extra_annotations=()):
    images, annotations = [], []
    for k, (name, (w, h, boxes)) in enumerate(files.items()):
        img_id = image_ids[k] if image_ids else int(name.split(".")[0])
        images.append({"id": img_id, "file_name": name, "width": w, "height": h})
        for x1, y1, x2, y2, label, crowd in boxes:
            annotations.append({"id": len(annotations) + 1, "image_id": img_id, "category_id": category_ids[label],
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                                "iscrowd": int(crowd)})
    annotations.extend(extra_annotations)
    # categories written out of order: the reader must sort them by id
    cats = [{"id": c, "name": n} for n, c in zip(CLASSES, category_ids)][::-1]
    with open(path, "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": cats}, f)


def voc_xml(file_name, width, height, objects):
    """objects: (name, xmin, ymin, xmax, ymax, difficult) in VOC's 1-based inclusive pixels."""
    parts = [f"<annotation><filename>{file_name}</filename>"]
    if width:
        parts.append(f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>")
    for name, xmin, ymin, xmax, ymax, difficult in objects:
        parts.append(f"<object><name>{name}</name><difficult>{int(difficult)}</difficult><bndbox><xmin>{xmin}</xmin>"
                     f"<ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>")
    return "".join(parts) + "</annotation>"


def write_voc(split_dir, files=SET, subfolders=False):
    anno_dir = os.path.join(split_dir, "Annotations") if subfolders else split_dir
    image_dir = os.path.join(split_dir, "JPEGImages") if subfolders else split_dir
    os.makedirs(anno_dir, exist_ok=True)
    write_images(image_dir, files)
    for name, (w, h, boxes) in files.items():
        objects = [(CLASSES[label], x1 + 1, y1 + 1, x2, y2, crowd) for x1, y1, x2, y2, label, crowd in boxes]
        with open(os.path.join(anno_dir, name.replace(".jpg", ".xml")), "w") as f:
            f.write(voc_xml(name, w, h, objects))


def write_txt(path, files=SET, prefix=""):
    lines = []
    for name, (_, _, boxes) in files.items():
        tokens = [f"{x1},{y1},{x2},{y2},{label}" for x1, y1, x2, y2, label, crowd in boxes if not crowd]
        lines.append(" ".join([prefix + name] + tokens))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def checked(parsed):
    return [r for r, _ in iter_checked_images(parsed)]


def by_name(parsed):
    return {r.file_name: r for r in parsed.records}


# -- each format, fixed expected values ----------------------------------------------------------------------------
def test_coco_sparse_ids_map_to_contiguous_labels_and_back(tmp_path):
    write_images(tmp_path / "img")
    write_coco(tmp_path / "a.json", category_ids=(12, 3, 7))   # cat=12, dog=3, bird=7
    parsed = parse_coco(str(tmp_path / "a.json"), str(tmp_path / "img"))
    # sorted by id: 3 (dog) -> 0, 7 (bird) -> 1, 12 (cat) -> 2
    assert parsed.class_names == ["dog", "bird", "cat"]
    assert parsed.category_ids == [3, 7, 12]
    recs = by_name(parsed)
    np.testing.assert_allclose(recs["1.jpg"].boxes, [[2, 3, 20, 25], [10, 5, 30, 28]])
    assert recs["1.jpg"].labels.tolist() == [2, 0]
    assert recs["2.jpg"].iscrowd.tolist() == [False, True]
    assert recs["3.jpg"].boxes.shape == (0, 4) and recs["3.jpg"].labels.dtype == np.int32
    assert recs["1.jpg"].boxes.dtype == np.float32
    assert recs["1.jpg"].path == str(tmp_path / "img" / "1.jpg")
    assert recs["1.jpg"].source == "a.json (image id 1)"
    gt = to_coco_gt(checked(parsed), parsed.class_names, parsed.category_ids)
    assert sorted(a["category_id"] for a in gt["annotations"] if a["image_id"] == 1) == [3, 12]
    assert {c["id"]: c["name"] for c in gt["categories"]} == {3: "dog", 7: "bird", 12: "cat"}


def test_coco_classes_selects_and_orders(tmp_path):
    write_images(tmp_path / "img")
    write_coco(tmp_path / "a.json", category_ids=(12, 3, 7))
    parsed = parse_coco(str(tmp_path / "a.json"), str(tmp_path / "img"), classes=["cat", "dog"])
    assert parsed.class_names == ["cat", "dog"] and parsed.category_ids == [12, 3]
    recs = by_name(parsed)
    assert recs["1.jpg"].labels.tolist() == [0, 1]
    assert recs["2.jpg"].labels.tolist() == [0]          # the bird is not selected: ignored, not reported
    assert parsed.report.boxes_dropped == 0
    with pytest.raises(DatasetError, match="horse"):
        parse_coco(str(tmp_path / "a.json"), str(tmp_path / "img"), classes=["cat", "horse"])


@pytest.mark.parametrize("subfolders", [False, True])
def test_voc_one_based_coordinates_and_difficult(tmp_path, subfolders):
    split = tmp_path / "voc" / "eval"
    write_voc(str(split), subfolders=subfolders)
    assert collect_voc_classes(str(split)) == ["bird", "cat", "dog"]
    parsed = parse_voc(str(split), CLASSES)
    recs = by_name(parsed)
    np.testing.assert_allclose(recs["1.jpg"].boxes, [[2, 3, 20, 25], [10, 5, 30, 28]])
    np.testing.assert_allclose(recs["2.jpg"].boxes, [[0, 0, 50, 40], [5.5, 6.25, 12, 20]])
    assert recs["2.jpg"].iscrowd.tolist() == [False, True]            # difficult
    assert recs["1.jpg"].labels.tolist() == [0, 1]
    assert (recs["1.jpg"].width, recs["1.jpg"].height) == (40, 30)
    assert [r.img_id for r in parsed.records] == [1, 2, 3]             # numeric stems
    assert parsed.category_ids == [1, 2, 3]
    xml_dir = "eval/Annotations" if subfolders else "eval"
    assert recs["1.jpg"].source == f"{xml_dir}/1.xml"
    assert os.path.isfile(recs["1.jpg"].path)


def test_voc_running_ids_and_xml_without_size(tmp_path):
    split = tmp_path / "train"
    write_jpg(str(split / "b_img.jpg"), 20, 20)
    write_jpg(str(split / "a_img.jpg"), 20, 20)
    (split / "b_img.xml").write_text(voc_xml("b_img.jpg", 0, 0, [("dog", 1, 1, 5, 5, 0)]))
    (split / "a_img.xml").write_text(voc_xml("a_img.jpg", 0, 0, []))
    parsed = parse_voc(str(split))                                     # classes from the data, with a warning
    assert parsed.class_names == ["dog"]
    assert any("no class names given" in m for m in parsed.report.messages)
    assert [(r.file_name, r.img_id, r.width) for r in parsed.records] == [("a_img.jpg", 1, 0), ("b_img.jpg", 2, 0)]
    rec = checked(parsed)[1]
    assert (rec.width, rec.height) == (20, 20)                         # read from the image


def test_txt_is_x_first_and_uses_line_numbers(tmp_path):
    write_images(tmp_path / "img" / "train2017")
    (tmp_path / "train.txt").write_text(
        "# header comment\n\ntrain2017/1.jpg 2,3,20,25,0 10,5,30,28,1\ntrain2017/3.jpg\n")
    parsed = parse_txt(str(tmp_path / "train.txt"), str(tmp_path / "img"), CLASSES)
    assert [r.img_id for r in parsed.records] == [3, 4]
    r = parsed.records[0]
    np.testing.assert_allclose(r.boxes, [[2, 3, 20, 25], [10, 5, 30, 28]])   # x1, y1, x2, y2 as written
    assert r.labels.tolist() == [0, 1] and r.iscrowd.tolist() == [False, False]
    assert r.source == "train.txt:3" and r.file_name == "train2017/1.jpg"
    assert parsed.records[1].boxes.shape == (0, 4)
    assert parsed.category_ids == [1, 2, 3]


def test_txt_without_classes_derives_names(tmp_path):
    write_images(tmp_path)
    (tmp_path / "a.txt").write_text("1.jpg 2,3,20,25,4\n")
    parsed = parse_txt(str(tmp_path / "a.txt"), str(tmp_path), None)
    assert parsed.class_names == [f"class_{k}" for k in range(5)]
    assert any("class_0..class_4" in m for m in parsed.report.messages)


# -- bad input -----------------------------------------------------------------------------------------------------
def test_txt_bad_lines_boxes_and_paths_are_counted(tmp_path):
    img = tmp_path / "img"
    write_images(img)
    (img / "broken.jpg").write_bytes(b"this is not a jpeg")
    outside = tmp_path / "outside.jpg"
    write_jpg(str(outside), 10, 10)
    lines = [
        "1.jpg 2,3,20,25,0 5,5,5,10,1 10,10,5,5,2 1,1,9,9,-1 30,20,60,50,0 50,40,60,50,1 nan,1,5,5,0",  # line 1
        "2.jpg 1,2,3,4",                      # 2: four numbers
        "3.jpg a,b,c,d,0",                    # 3: text where numbers belong
        "missing.jpg 1,1,5,5,0",              # 4
        "broken.jpg",                         # 5
        "../outside.jpg 1,1,5,5,0",           # 6
        f"{outside} 1,1,5,5,0",               # 7: absolute
        "broken.jpg",                         # 8: same image again (with other boxes, both would go)
    ]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    printed = []
    parsed = parse_txt(str(tmp_path / "train.txt"), str(img), CLASSES)
    parsed.report.printer = printed.append
    recs = checked(parsed)
    report = parsed.report

    assert [r.source for r in recs] == ["train.txt:1"]
    # 2 + 3 zero-area/inverted/nan, unknown class -1; box 30,20,60,50 clipped to 40x30; 50,40,60,50 wholly outside
    np.testing.assert_allclose(recs[0].boxes, [[2, 3, 20, 25], [30, 20, 40, 30]])
    assert report.drop_reasons == {"zero-area or inverted": 2, "unknown class": 1, "not a finite number": 1,
                                   "outside image": 1}
    assert report.boxes_clipped == 1
    assert report.skip_reasons == {"malformed line": 2, "path outside image folder": 2, "missing image": 1,
                                   "unreadable image": 1, "duplicate image": 1}
    text = "\n".join(report.messages)
    for expected in ["train.txt:2: skipped image: malformed line", "train.txt:3: skipped image: malformed line",
                     "train.txt:4: skipped image: missing image", "train.txt:5: skipped image: unreadable image",
                     "train.txt:6: skipped image: path outside image folder",
                     "train.txt:7: skipped image: path outside image folder",
                     "train.txt:8: skipped image: duplicate image",
                     "train.txt:1: dropped box: unknown class (box 4: class index -1, 3 classes)",
                     "train.txt:1: dropped box: zero-area or inverted (box 2",
                     "train.txt:1: clipped box to the image"]:
        assert expected in text, expected
    assert report.summary(8) == ("skipped 7 of 8 images (2 malformed line, 2 path outside image folder, "
                                 "1 duplicate image, 1 missing image, 1 unreadable image); dropped 5 boxes "
                                 "(2 zero-area or inverted, 1 unknown class, 1 not a finite number, "
                                 "1 outside image); clipped 1 boxes")


def test_a_txt_class_index_beyond_the_class_list_stops_with_one_line(tmp_path):
    """Not a bad record: the data and --classes disagree, and going on would drop most boxes and learn nothing."""
    img = write_images(tmp_path / "img")
    (tmp_path / "train.txt").write_text("1.jpg 2,3,20,25,0\n\n2.jpg 1,1,9,9,1 2,2,8,8,3\n")
    with pytest.raises(DatasetError) as e:
        parse_txt(str(tmp_path / "train.txt"), str(img), CLASSES)
    assert str(e.value).startswith(f"{tmp_path / 'train.txt'}:3: box 2 has class index 3, but there are 3 classes "
                                   f"({', '.join(CLASSES)}); indices run from 0 to 2")
    assert "\n" not in str(e.value)


def test_coco_bad_entries_are_reported_with_ids(tmp_path):
    write_images(tmp_path / "img")
    path = tmp_path / "a.json"
    write_coco(path, extra_annotations=[
        {"id": 901, "image_id": 77, "category_id": 1, "bbox": [1, 1, 5, 5]},            # unknown image
        {"id": 902, "image_id": 1, "category_id": 99, "bbox": [1, 1, 5, 5]},            # unknown category
        {"id": 903, "image_id": 1, "category_id": 1, "bbox": [1, 1, 0, 5]},             # zero width
        {"id": 904, "image_id": 1, "category_id": 1, "bbox": [1, 1, "x", 5]},           # malformed
        {"id": 905, "image_id": 2, "category_id": 1, "bbox": [1, 1, -3, 5]},            # inverted
    ])
    doc = json.loads(path.read_text())
    doc["images"].append({"id": 2, "file_name": "2.jpg", "width": 50, "height": 40})   # duplicate id
    doc["images"].append({"id": 8, "file_name": "../3.jpg", "width": 32, "height": 32})
    doc["images"].append({"id": 9, "file_name": str(tmp_path / "img" / "3.jpg")})
    doc["images"].append({"id": 10, "file_name": "gone.jpg"})
    path.write_text(json.dumps(doc))
    parsed = parse_coco(str(path), str(tmp_path / "img"))
    recs = checked(parsed)
    report = parsed.report
    assert sorted(r.img_id for r in recs) == [1, 2, 3]
    text = "\n".join(report.messages)
    for expected in ["a.json (annotation id 901): dropped box: unknown image id",
                     "a.json (image id 1): dropped box: unknown class (annotation id 902: category id 99)",
                     "a.json (image id 1): dropped box: zero-area or inverted (annotation id 903",
                     "a.json (image id 1): dropped box: malformed box (annotation id 904",
                     "a.json (image id 2): dropped box: zero-area or inverted (annotation id 905",
                     "a.json (image id 2): skipped image: duplicate image id",
                     "a.json (image id 8): skipped image: path outside image folder",
                     "a.json (image id 9): skipped image: path outside image folder",
                     "a.json (image id 10): skipped image: missing image"]:
        assert expected in text, expected
    assert report.images_skipped == 4 and report.boxes_dropped == 5


def test_malformed_json_names_file_line_and_column(tmp_path):
    (tmp_path / "bad.json").write_text('{"images": [\n  {"id": 1,, }\n]}')
    with pytest.raises(DatasetError, match=r"bad\.json:2:\d+: malformed JSON"):
        parse_coco(str(tmp_path / "bad.json"), str(tmp_path))
    (tmp_path / "nocat.json").write_text('{"images": []}')
    with pytest.raises(DatasetError, match="categories"):
        parse_coco(str(tmp_path / "nocat.json"), str(tmp_path))


def test_voc_bad_xml_box_and_class_are_reported(tmp_path):
    split = tmp_path / "train"
    write_voc(str(split))
    (split / "4.xml").write_text("<annotation>\n<filename>3.jpg</filename>\n<object></annotation>")
    (split / "5.xml").write_text(voc_xml("5.jpg", 40, 30, [("horse", 1, 1, 5, 5, 0), ("cat", 1, "x", 5, 5, 0),
                                                           ("cat", 9, 9, 3, 3, 0)]))
    (split / "6.xml").write_text(voc_xml("../../x.jpg", 40, 30, []))
    parsed = parse_voc(str(split), CLASSES)
    text = "\n".join(parsed.report.messages)
    assert "train/4.xml: skipped image: bad XML (line 3, column" in text
    assert "train/5.xml: dropped box: unknown class (object 1: 'horse')" in text
    assert "train/5.xml: dropped box: malformed box (object 2 (cat))" in text
    assert "train/5.xml: dropped box: zero-area or inverted (object 3 (cat)" in text
    assert "train/6.xml: skipped image: path outside image folder" in text
    assert sorted(r.img_id for r in parsed.records) == [1, 2, 3, 5]


def test_check_image_corrects_size_and_never_raises(tmp_path):
    write_jpg(str(tmp_path / "a.jpg"), 40, 30)
    report = SkipReport(printer=lambda line: None)
    rec = Record(img_id=1, path=str(tmp_path / "a.jpg"), file_name="a.jpg",
                 boxes=np.array([[0, 0, 100, 100]], np.float32), labels=np.zeros(1, np.int32),
                 iscrowd=np.zeros(1, bool), width=100, height=100, source="x.json (image id 1)")
    assert check_image(rec, (tmp_path / "a.jpg").read_bytes(), report) == (30, 40)
    assert (rec.width, rec.height) == (40, 30) and report.sizes_corrected == 1
    np.testing.assert_allclose(rec.boxes, [[0, 0, 40, 30]])
    for junk in [b"", b"\xff\xd8\xff" + b"\x00" * 50, b"\x89PNG\r\n\x1a\n" + b"\xff" * 30]:
        assert check_image(rec, junk, report) is None
    assert report.skip_reasons["unreadable image"] == 3


def test_resolve_image_path(tmp_path):
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    assert resolve_image_path(str(root), "sub/a.jpg") == str(root / "sub" / "a.jpg")
    assert resolve_image_path(str(root), "sub/../a.jpg") == str(root / "a.jpg")
    assert resolve_image_path(str(root), "../images2/a.jpg") is None
    assert resolve_image_path(str(root), "sub/../../a.jpg") is None
    assert resolve_image_path(str(root), str(root / "a.jpg")) is None
    assert resolve_image_path(str(root), "") is None
    link = tmp_path / "link"
    link.symlink_to(root)                                   # the folder itself may be a link
    assert resolve_image_path(str(link), "a.jpg") == str(root / "a.jpg")


def test_report_prints_only_the_first_lines():
    printed = []
    report = SkipReport(max_printed=20, printer=printed.append)
    for k in range(25):
        report.drop_boxes(f"a.txt:{k + 1}", "unknown class")
    assert len(printed) == 21 and "not printed" in printed[-1]
    assert len(report.messages) == 25
    assert report.summary(25).endswith("(5 warnings not printed)")


# -- the same data in every format ---------------------------------------------------------------------------------
def test_coco_voc_txt_give_the_same_ground_truth(tmp_path):
    # crowd/difficult boxes cannot be written in TXT, so this set has none
    files = {name: (w, h, [b for b in boxes if not b[5]]) for name, (w, h, boxes) in SET.items()}
    write_images(tmp_path / "img", files)
    write_coco(tmp_path / "a.json", files)
    write_voc(str(tmp_path / "voc" / "eval"), files)
    write_txt(tmp_path / "a.txt", files)

    gts = []
    for parsed in [parse_coco(str(tmp_path / "a.json"), str(tmp_path / "img")),
                   parse_voc(str(tmp_path / "voc" / "eval"), CLASSES),
                   parse_txt(str(tmp_path / "a.txt"), str(tmp_path / "img"), CLASSES)]:
        gts.append(to_coco_gt(checked(parsed), parsed.class_names, parsed.category_ids))
    first = gts[0]
    for gt in gts[1:]:
        assert gt["images"] == first["images"]
        assert gt["categories"] == first["categories"]
        assert len(gt["annotations"]) == len(first["annotations"]) == 3
        for a, b in zip(gt["annotations"], first["annotations"]):
            assert (a["image_id"], a["category_id"], a["iscrowd"]) == (b["image_id"], b["category_id"], b["iscrowd"])
            np.testing.assert_allclose(a["bbox"], b["bbox"], atol=1e-3)
            assert abs(a["area"] - b["area"]) < 1e-3
