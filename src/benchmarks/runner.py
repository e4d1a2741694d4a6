"""benchmark.py's driver: runs the selected measurements in a fixed order, prints a summary, writes JSON.

Order matters for memory: peak RSS only grows, so the light measurements run first, then training (whose peak is
the figure that matters), then the rest; each result records the process's peak RSS when it finished.
"""
import json
import logging
import os
import tempfile
import time

from ..config import ConfigError, load_config
from ..fileio import atomic_path
from .measure import gemm_peak_gflops, machine, peak_rss_mb

log = logging.getLogger("ssd")

PHASES = ("flops", "matching", "train", "inference", "pipeline", "postprocess")
# Matching is also timed against the anchor sets that the targets name: SSD300's 8732 and the 640 FPN's 51150.
REFERENCE_ANCHOR_CONFIGS = ("configs/ssd_vgg16_300.yaml", "configs/ssd_resnet50_fpn_640.yaml")
COCO_CLASSES = 80  # post-processing is timed as on COCO val2017, whatever the training set


def selected_phases(names):
    """The measurements named in `names` (the `benchmarks` key), in their running order."""
    chosen = [str(p) for p in names]
    unknown = sorted(set(chosen) - set(PHASES))
    if unknown or not chosen:
        raise ConfigError(f"--benchmarks: unknown {unknown or 'empty list'}; choose from {list(PHASES)}")
    return [p for p in PHASES if p in chosen]


def _anchors_of(config_path):
    from ..models.detector import build_detector
    return build_detector(load_config(config_path), COCO_CLASSES).spec.anchors


def _json_path(json_path, output_dir, model_name, batch_size):
    if json_path:
        return os.path.abspath(json_path)
    name = f"{model_name}_b{batch_size}_{time.strftime('%Y%m%d-%H%M%S')}.json"
    return os.path.abspath(os.path.join(output_dir, "benchmarks", name))


def run_benchmarks_from_config(cfg, device):
    """Every selected measurement for `cfg`'s model: the config-reading layer of the benchmarks; the phases take
    explicit arguments."""
    from ..data.pipeline import build_target_encoder, train_dataset_from_config
    from ..data.sources import build_split, resolve_num_classes
    from ..evaluation.postprocess import NMSParams
    from ..models.detector import build_detector
    from ..models.inference import InferenceNet
    from ..kernels.swap import kernel_plan, use_cpu_kernels
    from ..training.builder import build_training
    from . import phases
    from .flops import forward_flops
    from .postprocess_bench import benchmark_postprocess

    chosen = selected_phases(cfg.benchmarks)
    report = {"model_name": cfg.model_name, "config": cfg.config_path, "img_shape": list(cfg.img_shape),
              "batch_size": cfg.batch_size, "amp_level": cfg.amp_level, "dataset_sink_mode": cfg.dataset_sink_mode,
              "cpu_kernels": kernel_plan(cfg.cpu_kernels, device.device_target, cfg.amp_level, False)[0],
              "recompute": cfg.recompute, "mode": cfg.mode, "machine": machine(),
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    train_info = build_split(cfg, "train") if {"train", "pipeline"} & set(chosen) else None
    num_classes = resolve_num_classes(cfg.num_classes, train_info.class_names) if train_info else COCO_CLASSES
    report["num_classes"] = num_classes
    net = None

    if "flops" in chosen:
        log.info("FLOPs per image and the GEMM peak")
        net = build_detector(cfg, num_classes)
        forward, by_layer = forward_flops(net, cfg.img_shape)
        report["flops"] = {"forward_gflops_per_image": forward / 1e9, "train_gflops_per_image": 3 * forward / 1e9,
                           "forward_gflops_by_layer_type": {k: v / 1e9 for k, v in by_layer.items()}}
        report["gemm_peak_gflops"] = gemm_peak_gflops()
    if "matching" in chosen:
        log.info("matching and encoding, 20 gt boxes per image")
        anchor_sets = {cfg.model_name: (net or build_detector(cfg, num_classes)).spec.anchors}
        for path in REFERENCE_ANCHOR_CONFIGS:
            anchors = _anchors_of(path)
            anchor_sets.setdefault(os.path.basename(path)[:-5], anchors)
        report["matching"] = {name: phases.benchmark_matching(build_target_encoder(cfg, anchors))
                              for name, anchors in anchor_sets.items()}
    if "train" in chosen:
        log.info(f"training: {cfg.warmup_steps} warm-up steps, then {cfg.timed_steps} timed steps at batch "
                 f"{cfg.batch_size}")
        session = build_training(cfg, train_info, num_classes, device)
        net = session.net
        report["train"] = phases.benchmark_training(session.train_step, session.dataset, cfg.batch_size,
                                                    cfg.warmup_steps, cfg.timed_steps, cfg.dataset_sink_mode)
        if cfg.dataset_sink_mode and not report["train"]["dataset_sink"]:
            report["train"]["note"] = ("dataset_sink_mode: MindSpore's data_sink refuses the CPU ('Data sinking "
                                       "supports ascend or gpu'), so the steps were fed from the host")
        if "flops" in report:
            achieved = report["flops"]["train_gflops_per_image"] * report["train"]["images_per_s"]
            report["train"]["achieved_gflops"] = achieved
            report["train"]["fraction_of_gemm_peak"] = achieved / report["gemm_peak_gflops"]
    if "inference" in chosen:
        log.info(f"inference latency at batch 1, {cfg.infer_runs} runs")
        if net is None:
            net = build_detector(cfg, num_classes)
            if report["cpu_kernels"]:
                use_cpu_kernels(net)
        report["inference"] = phases.benchmark_inference(InferenceNet(net, cfg.prior_scaling), cfg.img_shape,
                                                         cfg.infer_runs)
        report["inference"]["peak_rss_mb"] = peak_rss_mb()
    if "pipeline" in chosen:
        log.info(f"data pipeline alone: {cfg.pipeline_batches} batches of {cfg.batch_size}")
        anchors = (net or build_detector(cfg, num_classes)).spec.anchors
        with tempfile.TemporaryDirectory(prefix="fdet_pipeline_") as folder:
            info = phases.coco_sized_source_from_config(cfg, folder) if cfg.dataset == "demo" else train_info
            dataset = train_dataset_from_config(cfg, info.path, anchors)
            report["pipeline"] = phases.benchmark_pipeline(info, dataset, cfg.batch_size, cfg.num_parallel_workers,
                                                           anchors, cfg.pipeline_batches)
        if cfg.dataset == "demo":
            report["pipeline"]["source"] = (f"{phases.COCO_SIZED['images']} synthetic images of "
                                            f"{phases.COCO_SIZED['image_size']} px (COCO-sized)")
    if "postprocess" in chosen:
        log.info(f"decode + NMS + COCOeval over {cfg.eval_images} images' stored raw outputs")
        anchors = (net or build_detector(cfg, num_classes)).spec.anchors
        report["postprocess"] = benchmark_postprocess(anchors, COCO_CLASSES, cfg.loss == "softmax_hnm",
                                                      cfg.prior_scaling, NMSParams.from_config(cfg),
                                                      cfg.eval_images)
    report["peak_rss_mb"] = peak_rss_mb()
    path = _json_path(cfg.json_path, cfg.output_dir, cfg.model_name, cfg.batch_size)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    print(format_report(report))
    print(f"wrote {path}")
    return report


def format_report(r):
    lines = [f"{r['model_name']} {r['img_shape'][0]}x{r['img_shape'][1]}, batch {r['batch_size']}, amp "
             f"{r['amp_level']}, cpu_kernels {r['cpu_kernels']}, {r['machine']['cores']} cores "
             f"({r['machine']['cpu']}), MindSpore {r['machine']['mindspore']}"]
    if "train" in r:
        t = r["train"]
        text = (f"  training            {t['median_s_per_step']:.3f} s/step median ({t['images_per_s']:.2f} img/s), "
                f"min {t['min_s_per_step']:.3f}, max {t['max_s_per_step']:.3f}; warm-up {t['warmup_s']}")
        if "fraction_of_gemm_peak" in t:
            text += f"; {t['achieved_gflops']:.1f} GFLOP/s = {100 * t['fraction_of_gemm_peak']:.1f}% of GEMM peak"
        lines.append(text)
    if "flops" in r:
        f = r["flops"]
        lines.append(f"  FLOPs per image     {f['forward_gflops_per_image']:.2f} G forward, "
                     f"{f['train_gflops_per_image']:.2f} G training; GEMM peak {r['gemm_peak_gflops']:.1f} GFLOP/s")
    if "pipeline" in r:
        p = r["pipeline"]
        lines.append(f"  data pipeline       {p['images_per_s']:.1f} img/s ({p['workers']} workers)")
    if "matching" in r:
        for name, m in r["matching"].items():
            lines.append(f"  matching+encoding   {m['ms_per_image']:.3f} ms/image, {m['gt_boxes']} boxes vs "
                         f"{m['anchors']} anchors ({name})")
    if "postprocess" in r:
        p = r["postprocess"]
        lines.append(f"  decode+NMS+COCOeval {p['s_per_1000_images']:.2f} s per 1000 images ({p['images']} images: "
                     f"decode+NMS {p['decode_nms_s']:.1f} s, COCOeval {p['cocoeval_s']:.1f} s)")
    if "inference" in r:
        lines.append(f"  inference batch 1   {r['inference']['median_ms']:.1f} ms median")
    lines.append(f"  peak RSS            {r['peak_rss_mb']:.0f} MB"
                 + (f" (after training: {r['train']['peak_rss_mb']:.0f} MB)" if "train" in r else ""))
    return "\n".join(lines)
