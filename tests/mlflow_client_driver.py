"""Drives the full MLflow client (mlflow 3.17.2, unmodified) against a gateway fronting a real
MLflow tracking server: a data scientist's ordinary code, with plain asserts. It runs in the
MLflow server's environment (built by .ci/mlflow_server_env.sh: the full `mlflow` package, which
pyfunc models need), not the gateway's: tests/test_tracking.py starts it as
`python mlflow_client_driver.py TRACKING_URI NAME` and reads its exit status and output.
"""
import json
import sys
import warnings

warnings.filterwarnings("ignore")

import mlflow  # noqa: E402
import pandas  # noqa: E402
from mlflow import MlflowClient  # noqa: E402


class Doubler(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input["x"] * 2


def scenario(tracking_uri, name):
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = MlflowClient()
    mlflow.set_experiment(f"{name}-exp")
    frame = pandas.DataFrame({"x": [1.0, 2.5]})
    with mlflow.start_run() as run:
        mlflow.log_param("kind", "doubler")
        info = mlflow.pyfunc.log_model(name="model", python_model=Doubler(),
                                       registered_model_name=name, input_example=frame)
    version = client.get_model_version(name, "1")
    # As MLflow's server with a tracking store: the version is stored at the logged model's
    # artifact location and takes its run. (MLflow never emits a version's model_id.)
    assert version.run_id == run.info.run_id, (version.run_id, run.info.run_id)
    location = client.get_model_version_download_uri(name, "1")
    assert location == client.get_logged_model(info.model_id).artifact_location, location
    client.set_registered_model_alias(name, "champion", "1")
    by_number = mlflow.pyfunc.load_model(f"models:/{name}/1").predict(frame)
    by_alias = mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(frame)
    assert list(by_number) == list(by_alias) == [2.0, 5.0], (list(by_number), list(by_alias))
    # The logged model lists its registered version (the mlflow.modelVersions tag): the server
    # records it, then the client appends it again, as against MLflow's own server.
    tags = client.get_logged_model(info.model_id).tags
    assert json.loads(tags["mlflow.modelVersions"]) == [{"name": name, "version": "1"}] * 2, tags
    # Registering from the run: the source becomes the run's logged model.
    second = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    assert second.version == "2" and second.run_id == run.info.run_id, second
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/2").predict(frame)
    assert list(loaded) == [2.0, 5.0]
    found = client.search_runs([run.info.experiment_id])
    assert [r.data.params for r in found] == [{"kind": "doubler"}], found
    print(json.dumps({"run_id": run.info.run_id, "model_id": info.model_id,
                      "versions": [version.version, second.version]}))


if __name__ == "__main__":
    scenario(*sys.argv[1:3])
