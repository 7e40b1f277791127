"""catalog.storage on a real moto S3 server: a folder's listing holds its entries only, not the
folder's own marker object (what `mkdir` or a console's "create folder" leave behind)."""

import boto3

from catalog import storage


def test_listdir_on_s3_leaves_out_the_folders_own_marker(tmp_path):
    from support.moto import moto_s3

    with moto_s3("lipforge-listdir-test", {"LIPFORGE_CACHE": str(tmp_path / "cache")}) as bucket:
        s3 = boto3.client("s3")
        name = bucket.removeprefix("s3://")
        for key in ("runs/", "runs/a.json", "runs/sub/", "runs/sub/b.json", "runs-other/c.json"):
            s3.put_object(Bucket=name, Key=key, Body=b"" if key.endswith("/") else b"{}")
        assert storage.listdir(f"{bucket}/runs") == ["a.json", "sub"]
        assert storage.listdir(f"{bucket}/runs/") == ["a.json", "sub"]
        assert storage.listdir(f"{bucket}/runs/sub") == ["b.json"]
        assert storage.listdir(f"{bucket}/missing") == []
