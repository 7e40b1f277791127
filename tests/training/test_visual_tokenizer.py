"""The visual tokenizer (MIM targets): ViT-aligned ids, k-means and VQ-VAE codebooks, loading
by path / NAME@VERSION / TorchScript, artifacts in the catalog, the `tokenizer` CLI."""

import copy
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from support.training_corpus import write_version
from torch import nn

from catalog import artifacts
from catalog.__main__ import run as catalog_run
from catalog.cli import run as cli_run
from catalog.errors import UserError
from catalog.versions import VersionNotFound
from training import visual_tokenizer as vt
from training.__main__ import COMMANDS
from training.__main__ import __doc__ as TRAINING_DOC
from training.data import load_image, raw_samples, resolve_shards

REPO = Path(__file__).resolve().parents[2]
GRID, SIZE = 8, 64


def smooth_images(n: int, seed: int, size: int = SIZE) -> torch.Tensor:
    """Images with structure at several scales (blurred noise plus gradients), CLIP-normalised-like."""
    g = torch.Generator().manual_seed(seed)
    x = F.avg_pool2d(torch.randn(n, 3, size, size, generator=g), 7, 1, 3) * 3
    ramp = torch.linspace(-1, 1, size)
    x += torch.rand(n, 3, 1, 1, generator=g) * ramp.view(1, 1, 1, size) + torch.rand(n, 3, 1, 1, generator=g)
    return x


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return smooth_images(48, seed=0)


@pytest.fixture(scope="module")
def kmeans(images) -> vt.KMeansTokenizer:
    patches = vt.patch_vectors(images[:40], GRID).reshape(-1, 192)
    return vt.learn_kmeans(patches, 64, iters=15, seed=0)


@pytest.fixture(scope="module")
def shapes_root(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("tokroot")
    write_version(root, "shapes", n=40, seed=3, per_shard=20)
    write_version(root, "shapes", n=20, seed=4, per_shard=20)
    return str(root)


def run_training(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli_run("python -m training", TRAINING_DOC, COMMANDS, list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# ------------------------------------------------------------------ alignment


def test_ids_are_one_per_vit_patch_row_major_from_exactly_the_tensor_given(kmeans, images):
    big = smooth_images(2, seed=9, size=96)
    crop_a, crop_b = big[:, :, 0:64, 0:64], big[:, :, 20:84, 12:76]
    ids_a = kmeans(crop_a, GRID)
    assert ids_a.shape == (2, GRID * GRID) and ids_a.dtype == torch.long
    assert torch.equal(kmeans(crop_a.clone(), GRID), ids_a)  # the same crop again: the same targets
    assert (kmeans(crop_b, GRID) != ids_a).float().mean() > 0.5  # another crop: other targets
    # id k is the token of ViT patch (k // grid, k % grid) alone: nothing from outside that patch
    for k in (0, 5, 17, 63):
        r, c = divmod(k, GRID)
        cell = crop_a[:, :, r * 8 : (r + 1) * 8, c * 8 : (c + 1) * 8]
        assert torch.equal(kmeans(cell, 1)[:, 0], ids_a[:, k])
    # changing one patch changes only that patch's id position
    edited = crop_a.clone()
    edited[:, :, 8:16, 24:32] = crop_b[:, :, 8:16, 24:32]
    changed = (kmeans(edited, GRID) != ids_a).any(0).nonzero().flatten().tolist()
    assert set(changed) <= {1 * GRID + 3}


def test_ids_under_no_grad_autocast_and_float16_inputs(kmeans, images):
    ids = kmeans(images[:4], GRID)
    with torch.no_grad():
        assert torch.equal(kmeans(images[:4], GRID), ids)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(kmeans(images[:4], GRID), ids)  # distances stay fp32 under autocast
    assert not ids.requires_grad
    assert list(kmeans.parameters()) == [] and {n for n, _ in kmeans.named_buffers()} == {
        "codebook",
        "code_mean",
        "code_std",
    }
    with pytest.raises(vt.GridMismatch, match="does not split into a 7x7"):
        kmeans(images[:1], 7)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_ids_equal_cpu_ids(kmeans, images):
    gpu = copy.deepcopy(kmeans).to("cuda")
    assert torch.equal(gpu(images.cuda(), GRID).cpu(), kmeans(images, GRID))


# ------------------------------------------------------------------ learning


def test_kmeans_beats_its_random_initial_codebook_and_a_gaussian_one(kmeans, images):
    held = images[40:]
    patches = vt.patch_vectors(images[:40], GRID).reshape(-1, 192)
    init = vt.KMeansTokenizer(
        patches[torch.randperm(patches.shape[0], generator=torch.Generator().manual_seed(0))[:64]]
    )
    gaussian = vt.KMeansTokenizer(torch.randn(64, 192) * patches.std() + patches.mean())
    err = vt.reconstruction_error(kmeans, held, GRID)
    assert err < 0.85 * vt.reconstruction_error(init, held, GRID)
    assert err < 0.5 * vt.reconstruction_error(gaussian, held, GRID)
    assert err < 0.5 * vt.mean_patch_error(images[:40], held, GRID)
    assert int((vt.code_counts(kmeans, images[:40], GRID) > 0).sum()) == 64  # empty clusters re-seeded


def test_kmeans_is_seeded_and_reseeds_empty_clusters():
    flat = torch.zeros(200, 3 * 4 * 4)  # 100 identical patches + 100 distinct ones
    flat[100:] = torch.randn(100, 48, generator=torch.Generator().manual_seed(1))
    a = vt.learn_kmeans(flat, 40, iters=5, seed=3)
    b = vt.learn_kmeans(flat, 40, iters=5, seed=3)
    assert torch.equal(a.codebook, b.codebook)
    ids = vt.nearest(flat, a.codebook)[0]
    assert torch.bincount(ids, minlength=40).gt(0).sum() == 40  # duplicates of the zero patch were re-seeded
    pp = vt.learn_kmeans(flat, 40, iters=3, seed=3, init="kmeans++")
    assert pp.codebook.shape == (40, 48)
    with pytest.raises(vt.TokenizerError, match="200 patches for 500 codes"):
        vt.learn_kmeans(flat, 500)


def test_normalized_kmeans_decodes_with_each_codes_mean_and_std(images):
    patches = vt.patch_vectors(images[:40], GRID).reshape(-1, 192)
    tok = vt.learn_kmeans(patches, 64, iters=10, normalize=True)
    assert tok.normalize and tok.code_std.min() > 0
    assert vt.reconstruction_error(tok, images[40:], GRID) < vt.mean_patch_error(images[:40], images[40:], GRID)


def test_vqvae_learns_frozen_buffers_and_beats_its_untrained_self():
    small = smooth_images(24, seed=2, size=32)  # grid 8 of 4x4-pixel patches: 2 stride-2 convs
    train, held = small[:20], small[20:]
    options = {"patch_pixels": 4, "hidden": 16, "dim": 8, "batch_size": 8, "seed": 0}
    untrained = vt.learn_vqvae(train, GRID, 32, steps=1, **options)
    seen = []
    tok = vt.learn_vqvae(train, GRID, 32, steps=40, progress=seen.append, **options)
    assert list(tok.parameters()) == [] and any(n.startswith("encoder.") for n, _ in tok.named_buffers())
    assert seen[-1]["step"] == 40 and tok(small[:2], GRID).shape == (2, 64)
    assert vt.reconstruction_error(tok, held, GRID) < 0.8 * vt.reconstruction_error(untrained, held, GRID)
    with pytest.raises(vt.TokenizerError, match="power of two"):
        vt.learn_vqvae(train, GRID, 32, steps=1, patch_pixels=6)


# ------------------------------------------------------------------ saving and loading


def test_save_load_by_path_and_state_dict_round_trip(kmeans, images, tmp_path):
    path = str(tmp_path / "tok.pt")
    digest = kmeans.save(path, {"note": "x"})
    loaded = vt.load_visual_tokenizer(str(tmp_path), path)
    assert isinstance(loaded, vt.KMeansTokenizer) and loaded.codes == 64
    assert torch.equal(loaded(images, GRID), kmeans(images, GRID))
    assert loaded.reference == f"{os.path.abspath(path)} sha256:{digest[:12]}" and loaded.meta == {"note": "x"}

    class Holder(nn.Module):  # the trainer's state_dict holds the tokenizer's buffers
        def __init__(self, tok: vt.VisualTokenizer) -> None:
            super().__init__()
            self.tok = tok

    state = Holder(kmeans).state_dict()
    assert "tok.codebook" in state
    fresh = Holder(vt.KMeansTokenizer.empty(kmeans.config()))
    fresh.load_state_dict(state)
    assert torch.equal(fresh.tok(images, GRID), kmeans(images, GRID))
    vq = vt.learn_vqvae(images[:8], GRID, 16, steps=2, hidden=8, dim=4, batch_size=4)
    vq.save(str(tmp_path / "vq.pt"))
    assert torch.equal(vt.load_visual_tokenizer(".", str(tmp_path / "vq.pt"))(images, GRID), vq(images, GRID))


def test_bad_paths_name_the_path_and_what_is_wrong(tmp_path):
    with pytest.raises(vt.MissingTokenizer, match=r"nope\.pt: no such file"):
        vt.load_visual_tokenizer(str(tmp_path), str(tmp_path / "nope.pt"))
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(vt.TokenizerError, match=r"text\.pt: not a lipforge tokenizer"):
        vt.load_visual_tokenizer(str(tmp_path), str(tmp_path / "text.pt"))
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(vt.TokenizerError, match=r"other\.pt: not a lipforge tokenizer"):
        vt.load_visual_tokenizer(str(tmp_path), str(tmp_path / "other.pt"))
    with pytest.raises(vt.TokenizerError, match="is a directory"):
        vt.load_visual_tokenizer(str(tmp_path), str(tmp_path))
    assert issubclass(vt.TokenizerError, UserError)


def test_load_by_name_at_version_from_the_recorded_artifact(kmeans, images, shapes_root, tmp_path):
    path = str(tmp_path / "visual-tokenizer.pt")
    kmeans.save(path)
    entry = artifacts.record_artifact(
        shapes_root, "shapes@1", "visual-tokenizer", "visual-tokenizer", path, {"codes": 64}
    )
    assert entry["path"] == "v1/artifacts/visual-tokenizer/visual-tokenizer.pt" and entry["bytes"] > 0
    tok = vt.load_visual_tokenizer(shapes_root, "shapes@1")
    assert torch.equal(tok(images, GRID), kmeans(images, GRID))
    assert tok.reference == f"shapes@1 visual-tokenizer sha256:{entry['sha256'][:12]}"
    with pytest.raises(
        vt.MissingTokenizer, match=r"shapes@2 has no 'visual-tokenizer' artifact.*tokenizer build shapes@2"
    ):
        vt.load_visual_tokenizer(shapes_root, "shapes@2")
    with pytest.raises(VersionNotFound, match=r"no complete version 7 .*\[1, 2\]"):
        vt.load_visual_tokenizer(shapes_root, "shapes@7")
    # the manifest is immutable: the artifact index sits beside it
    manifest = json.loads(Path(shapes_root, "shapes", "v1", "manifest.json").read_text())
    assert "artifacts" not in manifest


def test_artifact_index_checks_names_files_and_hashes(shapes_root, tmp_path):
    f = tmp_path / "blob.bin"
    f.write_bytes(b"abc")
    artifacts.record_artifact(shapes_root, "shapes@latest", "blob", "test", str(f), {"n": 1})
    assert artifacts.list_artifacts(shapes_root, "shapes@2")["blob"]["meta"] == {"n": 1}
    assert open(artifacts.artifact_path(shapes_root, "shapes@2", "blob"), "rb").read() == b"abc"
    with pytest.raises(artifacts.ArtifactNotFound, match="shapes@2 has no artifact 'nope' \\(it has: blob\\)"):
        artifacts.artifact_path(shapes_root, "shapes@2", "nope")
    with pytest.raises(artifacts.ArtifactError, match="artifact name 'Bad/Name'"):
        artifacts.record_artifact(shapes_root, "shapes@2", "Bad/Name", "test", str(f))
    Path(shapes_root, "shapes", "v2", "artifacts", "blob", "blob.bin").write_bytes(b"abd")
    with pytest.raises(artifacts.ArtifactError, match="does not match its recorded sha256"):
        artifacts.artifact_path(shapes_root, "shapes@2", "blob")


def test_artifacts_on_an_s3_root_download_once_into_the_cache(kmeans, images, tmp_path, monkeypatch):
    from support.moto import moto_s3

    monkeypatch.setenv("LIPFORGE_CACHE", str(tmp_path / "cache"))
    with moto_s3("tok") as bucket:
        root = f"{bucket}/data"
        write_version(root, "shapes", n=4, seed=5, per_shard=4)
        kmeans.save(str(tmp_path / "visual-tokenizer.pt"))
        artifacts.record_artifact(
            root, "shapes@1", "visual-tokenizer", "visual-tokenizer", str(tmp_path / "visual-tokenizer.pt")
        )
        local = artifacts.artifact_path(root, "shapes@1", "visual-tokenizer")
        assert local.startswith(str(tmp_path / "cache")) and os.path.isfile(local)
        assert torch.equal(vt.load_visual_tokenizer(root, "shapes@1")(images, GRID), kmeans(images, GRID))


# ------------------------------------------------------------------ a user's TorchScript encoder


class PatchLogits(nn.Module):
    """A stand-in dVAE encoder: a stride-8 conv to `codes` logits per 8x8 patch."""

    codes: int

    def __init__(self, codes: int = 16) -> None:
        super().__init__()
        self.codes = codes
        self.conv = nn.Conv2d(3, codes, 8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class PatchIds(PatchLogits):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).argmax(1)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_torchscript_encoder_accepted_and_grid_mismatch_rejected(images, tmp_path):
    torch.manual_seed(0)
    enc = PatchLogits(16)
    path = str(tmp_path / "enc.ts")
    torch.jit.script(enc).save(path)
    tok = vt.load_visual_tokenizer(str(tmp_path), path)
    assert isinstance(tok, vt.TorchScriptTokenizer) and tok.codes == 16 and list(tok.parameters()) == []
    with torch.no_grad():
        expected = enc(images[:3]).argmax(1).flatten(1)
    assert torch.equal(tok(images[:3], GRID), expected)
    tok.check(SIZE, GRID)
    with pytest.raises(vt.GridMismatch, match=r"enc\.ts.*gives a 8x8 token grid.*has a 4x4 patch grid"):
        tok(images[:1], 4)
    with pytest.raises(vt.GridMismatch):
        tok.check(SIZE, 4)
    resized = vt.load_visual_tokenizer(str(tmp_path), path, input_size=32)  # the user's size: 32 / 8 = 4x4
    assert resized(images[:2], 4).shape == (2, 16)
    # ids form, pickling (Ray) and the checkpoint's state_dict carry the script
    torch.jit.script(PatchIds(16)).save(str(tmp_path / "ids.ts"))
    ids_tok = vt.load_visual_tokenizer(str(tmp_path), str(tmp_path / "ids.ts"))
    assert ids_tok(images[:2], GRID).shape == (2, 64)
    again = pickle.loads(pickle.dumps(tok))
    assert torch.equal(again(images[:3], GRID), expected) and "script" in tok.state_dict()
    tok.save(str(tmp_path / "saved.pt"))  # e.g. to record a user's encoder as a version's artifact
    saved = vt.load_visual_tokenizer(str(tmp_path), str(tmp_path / "saved.pt"))
    assert isinstance(saved, vt.TorchScriptTokenizer) and torch.equal(saved(images[:3], GRID), expected)
    with pytest.raises(vt.TokenizerError, match="gives 16 logits per patch, expected 32 codes"):
        vt.load_visual_tokenizer(str(tmp_path), path, codes=32)(images[:1], GRID)
    with pytest.raises(vt.TokenizerError, match="has no decoder"):
        vt.reconstruction_error(tok, images[:1], GRID)


# ------------------------------------------------------------------ the CLI


def test_tokenizer_build_cli_end_to_end_and_catalog_show_lists_it(shapes_root, capsys):
    code, out, err = run_training(
        capsys, "tokenizer", "build", "shapes@1", "--codes", "32", "--iters", "5", "--root", shapes_root
    )
    assert code == 0, err
    assert "codes used: " in out and "of 32" in out and "reconstruction MSE (held out)" in out
    assert "36 learned on (2,304 patches), 4 held out" in out
    index = artifacts.list_artifacts(shapes_root, "shapes@1")
    meta = index["visual-tokenizer"]["meta"]
    assert meta["method"] == "kmeans" and meta["grid"] == 8 and meta["codes"] == 32 and meta["recon_mse"] > 0
    tok = vt.load_visual_tokenizer(shapes_root, "shapes@1")
    _, urls = resolve_shards(shapes_root, "shapes@1")
    image = load_image(next(raw_samples(urls, ("jpg",)))["jpg"], SIZE)[None]
    assert tok.codes == 32 and tok(image, GRID).shape == (1, 64)

    code, out, _ = run_training(capsys, "tokenizer", "show", "shapes@1", "--root", shapes_root)
    assert code == 0 and "visual-tokenizer" in out and "method: kmeans" in out

    code = catalog_run(["--root", shapes_root, "show", "shapes@1"])
    out = capsys.readouterr().out
    section = out[out.index("\nartifacts\n") :]
    assert (
        code == 0 and "visual-tokenizer" in section and "v1/artifacts/visual-tokenizer/visual-tokenizer.pt" in section
    )
    assert "method=kmeans codes=32 grid=8" in section
    code = catalog_run(["--root", shapes_root, "show", "shapes@1", "--json"])
    shown = json.loads(capsys.readouterr().out)
    assert code == 0 and shown["artifacts"]["visual-tokenizer"]["kind"] == "visual-tokenizer"


def test_tokenizer_build_vqvae_and_user_errors(shapes_root, capsys):
    code, out, err = run_training(
        capsys, "tokenizer", "build", "shapes@2", "--method", "vqvae", "--codes", "32", "--iters", "3",
        "--name", "vq-tokenizer", "--root", shapes_root,
    )  # fmt: skip
    assert code == 0, err
    assert artifacts.list_artifacts(shapes_root, "shapes@2")["vq-tokenizer"]["meta"]["method"] == "vqvae"
    assert isinstance(vt.load_visual_tokenizer(shapes_root, "shapes@2", name="vq-tokenizer"), vt.VQVAETokenizer)
    for argv, message in [
        (["--codes", "5000"], "fewer than --codes 5000"),
        (["--grid", "7"], "--grid 7: does not divide the image size 64 of preset 'tiny'"),
        (["--preset", "huge"], "--preset: model.preset 'huge': no such preset"),
        (["--codes", "1"], "--codes 1: need at least 2"),
    ]:
        code, _, err = run_training(capsys, "tokenizer", "build", "shapes@1", "--root", shapes_root, *argv)
        assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1, err
    code, _, err = run_training(capsys, "tokenizer", "show", "shapes@9", "--root", shapes_root)
    assert code == 2 and "no complete version 9" in err


def test_the_real_cli_entry_point(shapes_root):
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    argv = ["tokenizer", "build", "shapes@2", "--codes", "16", "--iters", "2", "--name", "cli", "--root", shapes_root]
    proc = subprocess.run(
        [sys.executable, "-m", "training", *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert f"stored: {shapes_root}/shapes/v2/artifacts/cli/cli.pt" in proc.stdout
    assert vt.load_visual_tokenizer(shapes_root, "shapes@2", name="cli").codes == 16
