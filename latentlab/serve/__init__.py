"""``latentlab serve``: a browser editor for generated faces and uploaded photos (Starlette, served by uvicorn).

* :mod:`latentlab.serve.state`: the page's edit state as data, and the codes it composes to;
* :mod:`latentlab.serve.models`: the models offered, their direction catalogues, the stores of codes and uploads;
* :mod:`latentlab.serve.jobs`: projections in worker threads, with progress events and cancellation;
* :mod:`latentlab.serve.app`: the web app (:func:`create_app`) and its routes.

Build one in Python (the CLI does the same)::

    from latentlab.serve import Editor, ServedModel, create_app
    editor = Editor({"synthfaces-64": ServedModel.load("synthfaces-64", "synthfaces-64")})
    app = create_app(editor)          # any ASGI server runs it: uvicorn.run(app, host="127.0.0.1", port=7860)
"""

from .app import Editor, create_app
from .models import ServedModel, public_name

__all__ = ["Editor", "ServedModel", "create_app", "public_name"]
