"""Evaluation videos: a tiny recording reads back as H.264 with annotated frames and honest
outcomes; a missing GL backend says how to enable OSMesa; the flags reach the eval config."""

import json
from dataclasses import replace

import imageio_ffmpeg
import mujoco
import numpy as np
import pytest

from mtopt.cli import COMMAND_CONFIGS, main, parse_config
from mtopt.envs import EnvConfig, make_spec, rendering
from mtopt.evaluation import evaluate as evaluate_module
from mtopt.evaluation import video
from mtopt.evaluation.evaluate import EvalConfig, run_eval, scripted_policy_for
from mtopt.evaluation.protocol import episode_seed, run_task_attempt

SIZE = 64
SEED = 10_000


def read_video(path):
    """``(metadata, frames)`` of an MP4, decoded by imageio-ffmpeg's ffmpeg."""
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    return meta, [np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in gen]


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """Two attempts of lift-any by the scripted picker (seed 10000: a success, then a failure)."""
    spec = make_spec()
    out = tmp_path_factory.mktemp("videos")
    policy_for = scripted_policy_for(spec)
    index = video.record_attempts(
        policy_for, spec, out, ["lift-any"], attempts=2, seed=SEED, size=SIZE, progress=False
    )
    return spec, out, index


def test_a_tiny_video_is_an_h264_mp4_with_an_index(recording):
    spec, out, index = recording
    assert json.loads((out / "index.json").read_text()) == index
    assert index["attempts_per_task"] == 2 and index["size"] == SIZE
    assert index["wall_time_s"] > 0
    files = sorted(p.name for p in out.glob("*.mp4"))
    assert files == sorted(v["file"] for v in index["videos"])
    for k, entry in enumerate(index["videos"]):
        outcome = "success" if entry["success"] else "failure"
        assert entry["file"] == f"lift-any-attempt{k}-{outcome}.mp4"
        assert entry["seed"] == episode_seed(SEED, spec.task_set.slot("lift-any"), k)
        meta, frames = read_video(out / entry["file"])
        assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
        assert meta["size"] == (SIZE, SIZE) and meta["fps"] == video.FPS
        # a frame after the reset and after every step, the final one held for HOLD_S
        hold = round(video.HOLD_S * video.FPS)
        assert len(frames) == entry["frames"] == entry["steps"] + hold


def test_the_index_holds_the_environments_own_judgement_of_the_same_scenes(recording):
    spec, out, index = recording
    assert [v["success"] for v in index["videos"]] == [True, False]  # both outcomes shown
    env = spec.make_env()
    policy = scripted_policy_for(spec)("lift-any")
    try:
        for entry in index["videos"]:
            # the same seed, unrecorded: the same scene, the same steps, the same outcome
            env.reset(seed=entry["seed"], options=spec.reset_options("lift-any", "evaluate", 0))
            first = env.render_camera("shoulder", SIZE)
            result = run_task_attempt(env, policy, "lift-any", entry["seed"], spec, 0)
            assert (result.success, result.unstable) == (entry["success"], False)
            last = env.render_camera("shoulder", SIZE)
            _, frames = read_video(out / entry["file"])
            band = SIZE // 3  # the text band's height, at most
            body = slice(band, SIZE - band)
            # the unannotated middle of the first frame is the scene the evaluation starts from
            assert np.abs(frames[0][body].astype(int) - first[body]).mean() < 6
            # the text band: the annotated final frame differs from a plain render there
            top = np.abs(frames[-1][:band].astype(int) - last[:band]).mean()
            assert top > 3 * np.abs(frames[-1][body].astype(int) - last[body]).mean() + 10
            # the outcome band at the bottom: green for a success, red for a failure
            r, g, _ = frames[-1][-4:].reshape(-1, 3).mean(0)
            assert (g > r + 40) if entry["success"] else (r > g + 40)
            # only the final frames carry the outcome
            r0, g0, _ = frames[0][-4:].reshape(-1, 3).mean(0)
            assert abs(r0 - g0) < 40
    finally:
        env.close()


def test_annotation_draws_only_in_the_bands():
    frame = np.full((128, 128, 3), 120, np.uint8)
    marked = video.annotate(frame, ["lift-carrot", "attempt 0  step 3/20"], outcome=True)
    assert marked.shape == frame.shape and marked.dtype == np.uint8
    r, g, _ = marked[-10:].reshape(-1, 3).mean(0)
    assert (marked[:20] != 120).any() and g > r + 40
    assert (marked[50:80] == 120).all()
    assert (video.annotate(frame, ["x"])[-10:] == 120).all()  # no outcome: no bottom band


def test_rerecording_replaces_the_old_videos(tmp_path):
    spec = make_spec()
    old = tmp_path / "lift-any-attempt0-failure.mp4"
    old.write_bytes(b"old")
    (tmp_path / "keep.txt").write_text("not ours")
    (tmp_path / "index.json").write_text(json.dumps({"videos": [{"file": old.name}]}))
    index = video.record_attempts(
        scripted_policy_for(spec), spec, tmp_path, ["place-any"], 1, size=32, progress=False
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["index.json", "keep.txt", index["videos"][0]["file"]]
    )


def _no_gl(*args, **kwargs):
    # what MuJoCo raises when no OpenGL context could be made (e.g. MUJOCO_GL=glfw, no display)
    raise mujoco.FatalError(
        "an OpenGL platform library has not been loaded into this process, this most likely "
        "means that a valid OpenGL context has not been created before mjr_makeContext was called"
    )


HOW_TO = r"apt-get install -y libosmesa6\) and start with MUJOCO_GL=osmesa PYOPENGL_PLATFORM=osmesa"


def test_a_video_without_a_gl_backend_says_how_to_enable_osmesa(monkeypatch):
    monkeypatch.setattr(rendering.mujoco, "Renderer", _no_gl)
    with pytest.raises(rendering.RenderBackendError, match=HOW_TO) as err:
        video.check_recording(make_spec(), SIZE)
    assert "MUJOCO_GL=egl" in str(err.value) and "FatalError" in str(err.value)


def test_a_gl_library_that_does_not_load_says_how_to_enable_osmesa(monkeypatch):
    """The backend is switched on first use: PyOpenGL failing to load libOSMesa there."""

    def no_osmesa(module):
        raise ImportError("('Unable to load OpenGL library', 'OSMesa: cannot open shared object')")

    monkeypatch.setattr(rendering, "_active_backend", None)
    monkeypatch.setattr(rendering, "_mujoco_backend", lambda: "glfw")
    monkeypatch.setattr(rendering.importlib, "reload", no_osmesa)
    with pytest.raises(rendering.RenderBackendError, match=HOW_TO):
        rendering.ensure_backend("osmesa")
    assert rendering._active_backend is None


def test_eval_without_gl_fails_in_one_line_before_evaluating(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(rendering.mujoco, "Renderer", _no_gl)
    monkeypatch.setattr(evaluate_module, "evaluate", lambda *a: pytest.fail("evaluated"))
    assert main(["eval", "--scripted", "--video", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "libosmesa6" in err[0] and "MUJOCO_GL=osmesa" in err[0]


def test_the_video_flags_reach_the_eval_config(capsys):
    flags = ["--scripted", "--video", "vids", "--video-attempts", "3", "--video-size", "128"]
    cfg = parse_config(COMMAND_CONFIGS["eval"], flags, "x", "")
    assert (cfg.video, cfg.video_attempts, cfg.video_size) == ("vids", 3, 128)
    default = parse_config(COMMAND_CONFIGS["eval"], ["--scripted"], "x", "")
    assert (default.video, default.video_attempts, default.video_size) == (None, 2, 256)
    assert main(["eval", "--scripted", "--video", "v", "--video-size", "100"]) == 2
    assert "multiple of 16 from 32 to 1024, got 100" in capsys.readouterr().err
    with pytest.raises(ValueError, match="video_attempts must be a positive integer"):
        EvalConfig(scripted=True, video_attempts=0)


def test_recording_leaves_the_evaluation_numbers_alone(tmp_path):
    spec = make_spec()
    base = EvalConfig(scripted=True, episodes_per_task=3, tasks=("place-any",), progress=False)
    plain = run_eval(base, spec)
    recorded = run_eval(replace(base, video=str(tmp_path), video_size=32), spec)
    assert recorded["tasks"] == plain["tasks"]
    assert recorded["video"]["files"] == [v["file"] for v in video_index(tmp_path)]
    assert len(recorded["video"]["files"]) == 2


def video_index(path):
    return json.loads((path / "index.json").read_text())["videos"]


def test_no_camera_or_a_file_for_a_directory_is_refused_before_evaluating(tmp_path, monkeypatch):
    monkeypatch.setattr(evaluate_module, "evaluate", lambda *a: pytest.fail("evaluated"))
    cfg = EvalConfig(scripted=True, episodes_per_task=1, video=str(tmp_path), progress=False)
    with pytest.raises(ValueError, match="environment 'pointmass' has no camera"):
        run_eval(cfg, EnvConfig(name="pointmass").spec())
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="is a file; give a directory"):
        run_eval(replace(cfg, video=str(tmp_path / "file")), make_spec())
