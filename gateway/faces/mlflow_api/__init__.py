"""MLflow's REST API as a wire format, shared by the faces that serve it: the MLflow face
mounts it under MLflow's roots, the OCI face under a platform's mlops paths (OCI's mlops API
is MLflow's). Its views, schemas, parsing and error codes; the tracking pass-through; the
X-MLFLOW-WORKSPACE scope. Each face keeps only its paths, its scope and its error body."""
