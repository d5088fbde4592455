"""CIFAR-10: binary records on tiny files in the official format, ZCA whitening on synthetic
data against a float64 reference, and the real training batches (the test batch is absent in
the CI copy, so its tests skip with a reason)."""

from __future__ import annotations

import numpy as np
import pytest

from adamlab.data import _store, cifar10
from adamlab.data._store import ChecksumError, DataWarning, FormatError, MissingDataError

from conftest import at_once, listing, log_calls, missing


def records(labels, images) -> bytes:
    """Official binary records: 1 label byte, then R (1024), G (1024), B (1024) bytes."""
    out = bytearray()
    for y, img in zip(labels, images):
        out.append(y)
        out += np.ascontiguousarray(img, dtype=np.uint8).tobytes()
    return bytes(out)


@pytest.fixture
def tiny():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(4, 3, 32, 32), dtype=np.uint8)
    return [7, 0, 9, 3], images


def test_records_are_label_then_red_green_blue_planes(tiny):
    labels, images = tiny
    x, y = cifar10.parse_records(records(labels, images), expected=4)
    assert y.tolist() == labels and y.dtype == np.int64
    np.testing.assert_array_equal(x, images)
    raw = records(labels, images)
    assert x[1, 0, 0, 0] == raw[cifar10.RECORD + 1]            # first red pixel of record 1
    assert x[1, 1, 0, 0] == raw[cifar10.RECORD + 1 + 1024]     # first green pixel
    assert x[1, 2, 31, 31] == raw[2 * cifar10.RECORD - 1]      # last blue pixel


def test_truncated_batch_is_rejected(tiny):
    raw = records(*tiny)
    with pytest.raises(FormatError, match=r"not a whole number of 3073-byte records"):
        cifar10.parse_records(raw[:-1])


def test_record_count_is_checked(tiny, tmp_path):
    (tmp_path / "b.bin").write_bytes(records(*tiny))
    with pytest.raises(FormatError, match="4 records, expected 10000"):
        cifar10.read_batch(tmp_path / "b.bin")


def test_labels_outside_0_9_are_rejected(tiny):
    labels, images = tiny
    with pytest.raises(FormatError, match="record 2 has label 10"):
        cifar10.parse_records(records([1, 2, 10, 3], images))


def test_to_float_is_exact_division_in_float32(tiny):
    _, images = tiny
    x = cifar10.to_float(images)
    assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    np.testing.assert_array_equal(x, images.astype(np.float32) / np.float32(255))


def test_missing_batch_names_file_and_fetch_command(tmp_path):
    with pytest.raises(MissingDataError, match=r"data_batch_1\.bin is missing; run `adamlab data fetch cifar10`"):
        cifar10.load_cifar10(root=tmp_path)
    with pytest.raises(MissingDataError, match=r"test_batch\.bin \(the CIFAR-10 test set\) is missing"):
        cifar10.load_cifar10("test", root=tmp_path)


def test_corrupt_batch_is_detected(tmp_path, tiny):
    res = cifar10.TRAIN[0]
    res.path(tmp_path).parent.mkdir(parents=True)
    res.path(tmp_path).write_bytes(records(*tiny) * 2500)  # right size, not the official bytes
    with pytest.raises(ChecksumError, match=r"data_batch_1\.bin: sha256 is [0-9a-f]{64}, expected cee91656"):
        cifar10.load_cifar10(root=tmp_path)


def test_split_is_validated(tmp_path):
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'valid'"):
        cifar10.load_cifar10("valid", root=tmp_path)


# --- ZCA ----------------------------------------------------------------------------------------


def correlated_images(n=3000, seed=0):
    """uint8 'images' of 12 pixels with strongly correlated, unequal-variance pixels."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(12, 12)) * np.linspace(0.2, 3.0, 12)
    z = rng.normal(size=(n, 12)) @ mix.T
    return np.clip(np.rint(128 + 8 * z), 0, 255).astype(np.uint8).reshape(n, 3, 2, 2)


def reference_zca(images, eps):
    x = images.reshape(len(images), -1).astype(np.float64) / 255
    mean = x.mean(axis=0)
    cov = (x - mean).T @ (x - mean) / len(x)
    lam, u = np.linalg.eigh(cov)
    return mean, u @ np.diag(1 / np.sqrt(lam + eps)) @ u.T, lam


@pytest.mark.parametrize("chunk", [1024, 7])
def test_fit_zca_matches_float64_reference(chunk):
    images = correlated_images()
    mean, w, lam = cifar10.fit_zca(images, eps=1e-3, chunk=chunk)
    ref_mean, ref_w, ref_lam = reference_zca(images, 1e-3)
    np.testing.assert_allclose(mean, ref_mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(lam, ref_lam, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(w, ref_w, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(w, w.T, rtol=0, atol=1e-12)


def test_whitened_training_data_has_identity_covariance_for_small_eps():
    images = correlated_images()
    mean, w, _ = cifar10.fit_zca(images, eps=1e-8)
    x = cifar10.whiten(cifar10.to_float(images), mean.astype(np.float32), w.astype(np.float32), chunk=500)
    flat = x.reshape(len(x), -1).astype(np.float64)
    np.testing.assert_allclose(flat.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(np.cov(flat, rowvar=False, bias=True), np.eye(12), atol=1e-3)


def test_eps_shrinks_low_variance_directions():
    images = correlated_images()
    _, w, lam = cifar10.fit_zca(images, eps=1e-2)
    # The whitened covariance has eigenvalues lambda_i / (lambda_i + eps): close to 1 where the
    # variance is large, shrunk where it is comparable to eps.
    assert lam.min() < 1e-2 < lam.max()
    x = images.reshape(len(images), -1).astype(np.float64) / 255
    cov_white = np.cov((x - x.mean(0)) @ w, rowvar=False, bias=True)
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(cov_white)), np.sort(lam / (lam + 1e-2)), rtol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"eps": 0.0}, r"eps \(zca_eps\) must be a finite number > 0, got 0.0"),
    ({"chunk": 2048}, "chunk must be in"),
])
def test_fit_zca_validates_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cifar10.fit_zca(correlated_images(10), **kwargs)


def test_fit_zca_wants_uint8_and_whiten_wants_float32():
    with pytest.raises(ValueError, match="expects uint8"):
        cifar10.fit_zca(np.zeros((4, 12), dtype=np.float32))
    with pytest.raises(ValueError, match="expects float32"):
        cifar10.whiten(np.zeros((4, 12)), np.zeros(12), np.eye(12))
    with pytest.raises(ValueError, match="images have 12 values, the whitening matrix 3"):
        cifar10.whiten(np.zeros((4, 12), np.float32), np.zeros(3, np.float32), np.eye(3, dtype=np.float32))


def test_whiten_refuses_a_non_contiguous_view_instead_of_whitening_a_copy():
    mean, w = np.full(12, 0.5, np.float32), np.diag(np.arange(1, 13, dtype=np.float32))
    x = np.random.default_rng(0).random((5, 3, 2, 2), dtype=np.float32)
    view = x.transpose(0, 1, 3, 2)
    before = view.copy()
    with pytest.raises(ValueError, match="C-contiguous.*np.ascontiguousarray"):
        cifar10.whiten(view, mean, w)
    np.testing.assert_array_equal(view, before)
    out = cifar10.whiten(np.ascontiguousarray(view), mean, w)
    np.testing.assert_allclose(out.reshape(5, -1), (before.reshape(5, -1) - mean) @ w, rtol=1e-6)


@pytest.fixture
def tiny_batches(tmp_path, monkeypatch, tiny):
    """Five 4-image training batches in the official layout, pinned as the official ones."""
    import dataclasses
    import hashlib

    labels, images = tiny
    pinned = []
    for i, res in enumerate(cifar10.TRAIN):
        data = records(labels, np.roll(images, i, axis=0))
        res.path(tmp_path).parent.mkdir(parents=True, exist_ok=True)
        res.path(tmp_path).write_bytes(data)
        pinned.append(dataclasses.replace(
            res, checksum=cifar10.Checksum("sha256", hashlib.sha256(data).hexdigest()), size=len(data)))
    monkeypatch.setattr(cifar10, "PER_BATCH", 4)
    monkeypatch.setattr(cifar10, "TRAIN", tuple(pinned))
    fits = []

    def small_fit(images, eps):  # stands in for the 3072x3072 eigendecomposition
        fits.append(eps)
        d = images[0].size
        return images.reshape(len(images), -1).mean(axis=0) / 255, np.eye(d) * eps, np.ones(d)

    monkeypatch.setattr(cifar10, "fit_zca", small_fit)
    return tmp_path, fits


def test_zca_cache_is_keyed_by_the_exact_eps(tiny_batches):
    root, fits = tiny_batches
    cifar10.zca_whitening(0.01, root)
    cifar10.zca_whitening(0.01, root)
    assert fits == [0.01]  # the second call read the cache
    eps = 0.01 + 1e-12      # "%g" would give both the same file name
    _, w, _ = cifar10.zca_whitening(eps, root)
    assert fits == [0.01, eps] and w[0, 0] == np.float32(eps)
    with np.load(cifar10._zca_cache(root, eps), allow_pickle=False) as z:
        assert z["eps"].item() == eps
    # A cache whose stored eps differs from its name (renamed, or an older file) is refitted.
    cifar10._zca_cache(root, eps).replace(cifar10._zca_cache(root, 0.02))
    cifar10.zca_whitening(0.02, root)
    assert fits == [0.01, eps, 0.02]


def test_zca_cache_is_refitted_when_the_training_batches_change(tiny_batches, monkeypatch):
    import dataclasses
    import hashlib

    root, fits = tiny_batches
    cifar10.zca_whitening(0.01, root)
    with np.load(cifar10._zca_cache(root, 0.01), allow_pickle=False) as z:
        assert z["train_checksums"].tolist() == [str(r.checksum) for r in cifar10.TRAIN]
    # Other batches (pinned differently, e.g. a corrected release): the old fit is not reused.
    path = cifar10.TRAIN[0].path(root)
    data = path.read_bytes()[:cifar10.RECORD] * 4
    path.write_bytes(data)
    monkeypatch.setattr(cifar10, "TRAIN", (dataclasses.replace(
        cifar10.TRAIN[0], checksum=cifar10.Checksum("sha256", hashlib.sha256(data).hexdigest())),)
        + cifar10.TRAIN[1:])
    cifar10.zca_whitening(0.01, root)
    assert fits == [0.01, 0.01]


def test_zca_cache_is_not_used_when_a_batch_is_corrupt(tiny_batches):
    root, fits = tiny_batches
    cifar10.zca_whitening(0.01, root)
    path = cifar10.TRAIN[2].path(root)
    raw = bytearray(path.read_bytes())
    raw[5] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match=r"data_batch_3\.bin"):
        cifar10.zca_whitening(0.01, root)
    assert fits == [0.01]


# --- real data ----------------------------------------------------------------------------------

BATCH_COUNTS = [
    [1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981],
    [984, 1007, 1010, 995, 1010, 988, 1008, 1026, 987, 985],
    [994, 1042, 965, 997, 990, 1029, 978, 1015, 961, 1029],
    [1003, 963, 1041, 976, 1004, 1021, 1004, 981, 1024, 983],
    [1014, 1014, 952, 1016, 997, 1025, 980, 977, 1003, 1022],
]
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(scope="module")
def real_root(data_root):
    if not all(r.path(data_root).is_file() for r in cifar10.TRAIN) \
            and not cifar10.ARCHIVE.path(data_root).is_file():
        missing("cifar10-train", f"CIFAR-10 training batches not in {data_root}/cifar10")
    return data_root


@pytest.fixture(scope="module")
def real_train(real_root):
    return cifar10.load_cifar10("train", root=real_root)


def test_real_training_set(real_train, real_root):
    x, y = real_train
    assert x.shape == (50_000, 32, 32, 3) and x.dtype == np.float32  # NHWC, as CNN takes
    assert x.min() == 0.0 and x.max() == 1.0 and y.dtype == np.int64
    assert [np.bincount(y[i * 10_000:(i + 1) * 10_000], minlength=10).tolist() for i in range(5)] == BATCH_COUNTS
    assert y[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert cifar10.class_names(real_root) == CLASSES
    for res in cifar10.TRAIN:
        assert cifar10.verify(res, real_root) == res.path(real_root)


def test_real_zca_fitted_on_training_set(real_train, real_root):
    x, _ = real_train
    mean, w, lam = cifar10.zca_whitening(root=real_root)  # fitted once, then cached
    assert mean.dtype == w.dtype == np.float32 and w.shape == (3072, 3072)
    np.testing.assert_allclose(w, w.T, atol=1e-6)
    mean, w = cifar10.to_layout(mean, w, "NHWC")  # fitted in the records' order, x is NHWC
    np.testing.assert_allclose(mean, x.reshape(len(x), -1).mean(axis=0, dtype=np.float64), atol=1e-6)
    assert lam.min() >= 0 and 150 < lam.sum() < 250  # total pixel variance in [0, 1] units
    sub = cifar10.whiten(x[:5000].copy(), mean, w)
    flat = sub.reshape(len(sub), -1)
    assert abs(float(flat.mean())) < 0.01
    # The whitened covariance is U diag(lambda / (lambda + eps)) U^T, so the total variance of
    # whitened images is sum(lambda / (lambda + eps)) (here estimated on 5,000 images).
    expected = float(np.sum(lam / (lam + cifar10.ZCA_EPS)))
    total = float(np.var(flat, axis=0, dtype=np.float64).sum())
    assert 300 < expected < 3072 and abs(total - expected) < 0.05 * expected
    assert cifar10._zca_cache(real_root, cifar10.ZCA_EPS).is_file()


def test_real_test_set(real_root):
    if not cifar10.has_test_set(real_root):
        pytest.skip("the official CIFAR-10 test batch is not in the data directory "
                    "(the CI copy has only the training batches; cifar10/partial is never used)")
    x, y = cifar10.load_cifar10("test", root=real_root)
    assert x.shape == (10_000, 32, 32, 3) and np.bincount(y).tolist() == [1000] * 10


@pytest.fixture
def tiny_archive(tmp_path, monkeypatch, tiny):
    """A fresh data directory holding only a tarball in the official layout (five 4-image
    training batches, a test batch, the class names), pinned as the official files."""
    import dataclasses
    import hashlib
    import io
    import tarfile

    labels, images = tiny
    members = {f"cifar-10-batches-bin/data_batch_{i}.bin": records(labels, images) for i in range(1, 6)}
    members["cifar-10-batches-bin/test_batch.bin"] = records(labels[::-1], images[::-1])
    members["cifar-10-batches-bin/batches.meta.txt"] = ("\n".join(CLASSES) + "\n\n").encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    archive = buf.getvalue()

    def pinned(res, data):
        return dataclasses.replace(res, checksum=cifar10.Checksum("sha256", hashlib.sha256(data).hexdigest()),
                                   size=len(data))

    monkeypatch.setattr(cifar10, "PER_BATCH", 4)
    monkeypatch.setattr(cifar10, "ARCHIVE", dataclasses.replace(
        cifar10.ARCHIVE, checksum=cifar10.Checksum("md5", hashlib.md5(archive).hexdigest()), urls=()))
    monkeypatch.setattr(cifar10, "TRAIN", tuple(
        pinned(r, members[f"cifar-10-batches-bin/data_batch_{i}.bin"]) for i, r in enumerate(cifar10.TRAIN, 1)))
    monkeypatch.setattr(cifar10, "TEST", pinned(cifar10.TEST, members["cifar-10-batches-bin/test_batch.bin"]))
    monkeypatch.setattr(cifar10, "META", pinned(cifar10.META, members["cifar-10-batches-bin/batches.meta.txt"]))
    root = tmp_path / "data"
    cifar10.ARCHIVE.path(root).parent.mkdir(parents=True)
    cifar10.ARCHIVE.path(root).write_bytes(archive)
    return root


def test_official_archive_is_accepted_like_extracted_files(tiny_archive, tiny):
    """A tarball in the official layout is verified, extracted safely and then read."""
    labels, images = tiny
    root = tiny_archive
    x, y = cifar10.load_cifar10("train", root=root)
    assert x.shape == (20, 32, 32, 3) and y.tolist() == labels * 5
    xt, yt = cifar10.load_cifar10("test", root=root, layout="NCHW")
    assert yt.tolist() == labels[::-1]
    np.testing.assert_array_equal(xt, cifar10.to_float(images[::-1]))
    assert cifar10.class_names(root) == CLASSES
    assert listing(root / "cifar10") == ["cifar-10-batches-bin", "cifar-10-binary.tar.gz"]


def small_dense_fit(images, eps):
    """A stand-in for the 3072x3072 eigendecomposition with a dense, symmetric W, so that a
    wrong pixel order would show."""
    d = images[0].size
    a = np.random.default_rng(7).normal(size=(d, 8)).astype(np.float64)
    return images.reshape(len(images), -1).mean(axis=0) / 255, eps * np.eye(d) + a @ a.T / 8, np.ones(d)


# --- layout: what the CNN takes ---------------------------------------------------------------


def test_the_default_layout_is_the_one_the_cnn_takes(tiny_batches):
    from adamlab.models import CNN

    root, _ = tiny_batches
    x, y = cifar10.load_cifar10(root=root)
    assert x.shape == (20, 32, 32, 3) and x.flags.c_contiguous
    np.testing.assert_array_equal(x, cifar10.load_cifar10(root=root, layout="NCHW")[0].transpose(0, 2, 3, 1))
    logits = CNN(channels=(2, 2, 2), fc=4, rng=np.random.default_rng(0)).forward(x, train=False)
    assert logits.shape == (20, 10) and np.all(np.isfinite(logits))


def test_layout_is_validated(tmp_path):
    with pytest.raises(ValueError, match=r"layout must be 'NHWC' \(N, 32, 32, 3\), as CNN takes, or 'NCHW'.*got 'NWHC'"):
        cifar10.load_cifar10(root=tmp_path, layout="NWHC")


def test_whitened_inputs_are_the_same_images_in_either_layout(tiny_batches, monkeypatch):
    root, _ = tiny_batches
    monkeypatch.setattr(cifar10, "fit_zca", small_dense_fit)
    nchw = cifar10.load_cifar10(root=root, layout="NCHW", whiten_inputs=True)[0]
    nhwc = cifar10.load_cifar10(root=root, whiten_inputs=True)[0]
    assert nhwc.shape == (20, 32, 32, 3)
    np.testing.assert_allclose(nhwc, nchw.transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-5)
    mean, w, _ = cifar10.zca_whitening(root=root)
    wrong = cifar10.whiten(cifar10.load_cifar10(root=root)[0], mean, w)  # records-order W on NHWC pixels
    assert np.abs(wrong - nhwc).max() > 100 * 1e-5


@pytest.mark.parametrize("eps", [np.inf, -np.inf, np.nan, 0.0, -1e-2, True, "0.01", None])
def test_zca_eps_must_be_finite_and_positive(eps, tmp_path):
    """inf passed `not eps > 0` and gave all-zero inputs; each is refused before any file is read."""
    for call in (lambda: cifar10.load_cifar10(root=tmp_path, whiten_inputs=True, zca_eps=eps),
                 lambda: cifar10.zca_whitening(eps, tmp_path),
                 lambda: cifar10.fit_zca(correlated_images(10), eps)):
        with pytest.raises(ValueError, match=r"eps \(zca_eps\) must be a finite number > 0, got"):
            call()
    assert listing(tmp_path) == []


# --- several processes, read-only folders, corrupt caches ---------------------------------------


def test_processes_loading_at_once_extract_and_fit_once(tiny_archive, tmp_path, monkeypatch):
    import tarfile

    root = tiny_archive
    log = tmp_path / "calls.log"
    monkeypatch.setattr(cifar10, "fit_zca", small_dense_fit)
    log_calls(monkeypatch, tarfile.TarFile, "extractall", log, delay=0.5)
    log_calls(monkeypatch, cifar10, "fit_zca", log, delay=0.5)

    def load(i):
        x, y = cifar10.load_cifar10(root=root, whiten_inputs=True)
        return [hashlib_sha256(x), y.tolist()]

    results = at_once(load, n=3)
    x, y = cifar10.load_cifar10(root=root, whiten_inputs=True)
    assert results == [[hashlib_sha256(x), y.tolist()]] * 3
    lines = log.read_text().split()[1::2]
    assert lines.count("extractall") == 1 and lines.count("fit_zca") == 1
    assert listing(root / "cifar10") == ["cache", "cifar-10-batches-bin", "cifar-10-binary.tar.gz"]
    assert listing(root / "cifar10" / "cache") == ["zca-eps0.01.npz"]


def hashlib_sha256(a: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def test_zca_of_a_read_only_data_directory_is_cached_in_the_fallback_folder(tiny_batches, tmp_path_factory,
                                                                           monkeypatch, read_only):
    root, fits = tiny_batches
    read_only(root)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg")))
    monkeypatch.setattr(_store, "_WARNED", set())
    with pytest.warns(DataWarning, match=f"cannot write the data directory {root} .*Read-only.*"
                                         f"caches go to {_store.fallback_dir(root)}"):
        cifar10.zca_whitening(0.01, root)
    assert (_store.fallback_dir(root) / "cifar10" / "cache" / "zca-eps0.01.npz").is_file()
    assert not (root / "cifar10" / "cache").exists()
    x, _ = cifar10.load_cifar10(root=root, whiten_inputs=True)
    assert fits == [0.01] and x.shape == (20, 32, 32, 3)  # the second call read the fallback cache


def test_zca_with_no_writable_cache_is_fitted_and_returned_with_one_warning(tiny_batches, tmp_path_factory,
                                                                          monkeypatch, read_only):
    root, fits = tiny_batches
    read_only(root)
    monkeypatch.setenv("XDG_CACHE_HOME", str(read_only(tmp_path_factory.mktemp("xdg"))))
    monkeypatch.setattr(_store, "_WARNED", set())
    with pytest.warns(DataWarning, match="not cached") as got:
        cifar10.load_cifar10(root=root, whiten_inputs=True)
        cifar10.load_cifar10(root=root, whiten_inputs=True)
    assert len([w for w in got if issubclass(w.category, DataWarning)]) == 1 and fits == [0.01, 0.01]


@pytest.mark.parametrize("damage", ["truncated", "altered"])
def test_a_corrupt_zca_cache_is_named_and_refitted(tiny_batches, damage):
    root, fits = tiny_batches
    mean, w, _ = cifar10.zca_whitening(0.01, root)
    path = cifar10._zca_cache(root, 0.01)
    raw = bytearray(path.read_bytes())
    if damage == "truncated":
        raw = raw[: len(raw) // 3]
    else:
        raw[bytes(raw).index(mean.tobytes()) + 5] ^= 0x40
    path.write_bytes(bytes(raw))
    with pytest.warns(DataWarning, match=f"ZCA cache {path} is corrupt .*rebuilding it"):
        again, _, _ = cifar10.zca_whitening(0.01, root)
    np.testing.assert_array_equal(again, mean)
    assert fits == [0.01, 0.01]
    cifar10.zca_whitening(0.01, root)
    assert fits == [0.01, 0.01]  # the refitted cache is whole again
