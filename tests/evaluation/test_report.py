"""The run report: one self-contained HTML page that a real headless browser renders with its
success table and chart, dataset composition, learning curves and video; missing parts named."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from fakes import TASK_SET, make_fake_episode
from PIL import Image

from mtopt.cli import main
from mtopt.data.log import EpisodeLogConfig, EpisodeLogWriter
from mtopt.evaluation.report import read_scalars, write_report
from mtopt.evaluation.summary import summarize, wilson_interval
from mtopt.evaluation.video import write_mp4
from mtopt.jsonio import write_json

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TASKS = list(TASK_SET.names)
SIZE = (1200, 3000)


def _result(rng, n=10):
    tasks = {}
    for t in TASKS:
        wins = int(rng.integers(0, n + 1))
        tasks[t] = {
            "success_rate": wins / n,
            "episodes": n,
            "successes": wins,
            "ci95": list(wilson_interval(wins, n)),
            "physics_unstable": 0,
            "train_episodes": 2,
        }
    return {"tasks": tasks, "summary": summarize({t: r["success_rate"] for t, r in tasks.items()})}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A demo-like run: eval.json, a 24-episode log, two training runs' TensorBoard scalars and
    a 64-pixel video with its index."""
    from torch.utils.tensorboard import SummaryWriter

    run = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(0)
    results = {"mt-opt": _result(rng), "scripted": _result(rng)}
    write_json(
        {"results": results, "checkpoint": "ckpt-<10>.pt", "rewards": "oracle"}, run / "eval.json"
    )
    with EpisodeLogWriter(run / "log", 0, EpisodeLogConfig(shard_episodes=8, fsync=False)) as w:
        for k in range(24):
            w.append(make_fake_episode(rng, task=TASKS[k % len(TASKS)], num_steps=3))
    for r in range(2):
        with SummaryWriter(str(run / f"round-{r}" / "tb")) as writer:
            for step in range(0, 50, 5):
                writer.add_scalar("train/loss", 1.0 / (1 + step + r), step)
                writer.add_scalar("train/mean_q", 0.01 * step, step)
    frames = [np.full((64, 64, 3), 40 * i, np.uint8) for i in range(5)]
    (run / "video").mkdir()
    write_mp4(run / "video" / "lift-any-attempt0-success.mp4", frames)
    video = {
        "file": "lift-any-attempt0-success.mp4",
        "task": "lift-any",
        "attempt": 0,
        "success": True,
        "steps": 4,
    }
    write_json(
        {"policy": "mt-opt", "env": "workcell", "videos": [video]}, run / "video" / "index.json"
    )
    return run


@pytest.fixture(scope="module")
def page(run_dir):
    path = write_report(run_dir, task_set=TASK_SET)
    assert path == run_dir / "report.html"
    return path.read_text()


def test_the_page_is_self_contained_with_every_section(run_dir, page):
    for sid in ("success", "composition", "curves", "videos"):
        assert f'<section id="{sid}">' in page
    assert "Missing" not in page
    assert page.count('class="task-row"') == len(TASKS)
    assert page.count("data:image/png;base64,") == 3 and "data:video/mp4;base64," in page
    assert "ckpt-&lt;10&gt;.pt" in page  # escaped
    assert not re.search(r'(src|href)="(https?:|file:|/)', page)  # nothing outside the page
    assert read_scalars(run_dir / "round-0" / "tb")["train/loss"][0] == list(range(0, 50, 5))


def test_missing_parts_are_named_and_the_cli_writes_the_page(tmp_path, capsys):
    out = tmp_path / "page" / "r.html"
    assert main(["report", str(tmp_path), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    page = out.read_text()
    assert page.count('class="missing"') == 4
    for what in ("eval.json", "episode log", "TensorBoard", "videos"):
        assert what in page
    assert main(["report", str(tmp_path / "nope")]) == 2


@pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary (scripts/setup.sh installs Debian's chromium)"
)
def test_headless_chromium_renders_the_page(page, tmp_path):
    # record what the browser rendered into the DOM: image and video sizes after loading
    probe = (
        "<script>window.addEventListener('load',()=>{const o=document.createElement('pre');"
        "o.id='probe';const v=document.querySelector('video');"
        "const f=()=>{o.textContent=JSON.stringify({img:[...document.images].map(i=>"
        "[i.className,i.naturalWidth,i.naturalHeight,i.width]),"
        "video:v?[v.videoWidth,v.videoHeight,v.readyState]:null});};"
        "f();document.body.appendChild(o);if(v){v.addEventListener('loadeddata',f);}});"
        "</script>"
    )
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", probe + "</body>"))
    flags = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--disable-dev-shm-usage",
        "--mute-audio",
        f"--window-size={SIZE[0]},{SIZE[1]}",
    ]
    dom = subprocess.run(
        [*flags, "--virtual-time-budget=15000", "--dump-dom", probed.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    for sid in ("success", "composition", "curves", "videos"):
        assert f'id="{sid}"' in dom
    assert dom.count('class="task-row"') == len(TASKS)
    sizes = json.loads(re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S).group(1))
    classes = [c.split()[1] for c, *_ in sizes["img"]]
    assert classes == ["success-chart", "composition-chart", "curves-chart"]
    assert all(w > 300 and h > 200 and shown > 300 for _, w, h, shown in sizes["img"])
    assert sizes["video"][:2] == [64, 64], sizes  # the browser decoded the H.264 video
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", probed.as_uri()],
        capture_output=True,
        timeout=60,
        check=True,
    )
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape == (SIZE[1], SIZE[0], 3)
    assert (image < 250).any(axis=2).mean() > 0.02  # not a blank page
    # the charts' first two colours (matplotlib's blue and orange bars) are on screen
    for colour in ((31, 119, 180), (255, 127, 14)):
        near = np.abs(image.astype(int) - colour).sum(axis=2) < 30
        assert near.sum() > 500, colour


def test_without_a_task_set_the_composition_says_what_is_missing(run_dir, tmp_path):
    page = write_report(run_dir, tmp_path / "r.html").read_text()
    assert "no task set given (pass --env)" in page
    assert page.count('class="task-row"') == len(TASKS)  # the other sections are unchanged
