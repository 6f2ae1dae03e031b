"""``signgen demo``: a local web page (Gradio, the optional ``demo`` extra) around the render
of ``signgen render``. :mod:`signgen.demo.render` checks and renders one request;
:mod:`signgen.demo.app` is the page and its server."""
