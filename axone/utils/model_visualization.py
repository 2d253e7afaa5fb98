"""Drawing a model's graph, as ``keras.utils.model_to_dot`` and ``keras.utils.plot_model``.

``model_to_dot`` builds a ``pydot.Dot`` graph: one box per layer (named by ``id(layer)``, its
label an HTML table with the layer name and class, and on request its activation, input and
output shapes, output dtype and whether it is trainable), one edge per connection of the
functional graph, a Sequential model as a chain. With ``expand_nested`` a nested functional or
Sequential model becomes a dashed cluster of its own layers, and the edges go into and out of
the layers inside it. A subclassed model is one box.

pydot is needed (``pip install pydot``); writing an image (``plot_model(to_file="x.png")``)
needs Graphviz's ``dot`` program too, but a ``.dot`` file (and ``model_to_dot(...).to_string()``)
is written without it.
"""
import os

__all__ = ["model_to_dot", "plot_model", "check_pydot", "check_graphviz"]

_PYDOT_HINT = ("pip install pydot (or pip install 'axone[plot_model]'); drawing an image also "
               "needs Graphviz's `dot` program (https://graphviz.gitlab.io/download/, e.g. "
               "apt-get install graphviz)")


def _pydot():
    try:
        import pydot
    except ImportError:
        raise ImportError(f"You must install pydot for model_to_dot and plot_model to work: "
                          f"{_PYDOT_HINT}") from None
    return pydot


def check_pydot():
    """True when pydot can be imported."""
    try:
        _pydot()
    except ImportError:
        return False
    return True


def check_graphviz():
    """True when pydot is there and Graphviz's ``dot`` program runs."""
    if not check_pydot():
        return False
    pydot = _pydot()
    errors = (OSError, getattr(pydot, "PydotException", OSError))
    try:
        pydot.Dot.create(pydot.Dot())
    except errors:
        return False
    return True


def _is_graph_model(layer):
    from ..models.model import Model
    return isinstance(layer, Model) and getattr(layer, "_is_graph", False)


def _is_sequential(layer):
    from ..models.sequential import Sequential
    return isinstance(layer, Sequential)


def _map_structure(f, x):
    if isinstance(x, (list, tuple)):
        return type(x)(_map_structure(f, v) for v in x)
    if isinstance(x, dict):
        return {k: _map_structure(f, v) for k, v in x.items()}
    return f(x)


def _activation_name(layer):
    act = layer.activation
    if hasattr(act, "name") and isinstance(act.name, str):
        return act.name
    if hasattr(act, "__name__"):
        return act.__name__
    return str(act)


def _format_shape(shape):
    if shape is None:
        return "?"
    if isinstance(shape, dict):
        text = ", ".join(f"{k}: {v}" for k, v in shape.items())
    else:
        text = f"{shape}"
    return text.replace("{", "").replace("}", "")


def _cell(text, bgcolor="white", color=None, colspan=None):
    span = f' colspan="{colspan}"' if colspan else ""
    font = f' color="{color}"' if color else ""
    return (f'<td bgcolor="{bgcolor}"{span}><font point-size="14"{font}>{text}</font></td>')


def layer_label(layer, show_layer_names, show_layer_activations, show_dtype, show_shapes,
                show_trainable):
    """The HTML-like label of a layer's box: a black title row (``<b>name</b> (Class)``, or the
    class alone), an activation row, then one row of shape / dtype / trainable cells."""
    class_name = type(layer).__name__
    if class_name == "Model" and _is_graph_model(layer):
        class_name = "Functional"           # what Keras's Model(inputs, outputs) is
    width = int(bool(show_dtype)) + int(bool(show_trainable)) + (2 if show_shapes else 0)
    colspan = max(1, width)
    title = f"<b>{layer.name}</b> ({class_name})" if show_layer_names else f"<b>{class_name}</b>"
    rows = [f'<tr><td colspan="{colspan}" bgcolor="black"><font point-size="16" color="white">'
            f'{title}</font></td></tr>']
    if show_layer_activations and getattr(layer, "activation", None) is not None:
        rows.append(f"<tr>{_cell(f'Activation: <b>{_activation_name(layer)}</b>', colspan=colspan)}"
                    f"</tr>")
    cells = []
    if show_shapes:
        in_shape = out_shape = None
        try:
            in_shape = _map_structure(lambda t: t.shape, layer.input)
            out_shape = _map_structure(lambda t: t.shape, layer.output)
        except (ValueError, AttributeError, IndexError):
            pass
        if class_name != "InputLayer":
            cells.append(_cell(f"Input shape: <b>{_format_shape(in_shape)}</b>"))
        cells.append(_cell(f"Output shape: <b>{_format_shape(out_shape)}</b>"))
    if show_dtype:
        dtype = None
        try:
            dtype = _map_structure(lambda t: str(t.dtype), layer.output)
        except (ValueError, AttributeError, IndexError):
            pass
        cells.append(_cell(f"Output dtype: <b>{dtype or '?'}</b>"))
    if show_trainable and layer.weights:
        if layer.trainable:
            cells.append(_cell("<b>Trainable</b>", bgcolor="forestgreen", color="white"))
        else:
            cells.append(_cell("<b>Non-trainable</b>", bgcolor="firebrick", color="white"))
    if cells:
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return ('<<table border="0" cellborder="1" bgcolor="black" cellpadding="10">'
            + "".join(rows) + "</table>>")


def _make_node(pydot, layer, options):
    node = pydot.Node(str(id(layer)), label=layer_label(layer, **options))
    node.set("fontname", "Helvetica")
    node.set("border", "0")
    node.set("margin", "0")
    return node


def _add_edge(pydot, dot, src, dst):
    src_id, dst_id = str(id(src)), str(id(dst))
    if not dot.get_edge(src_id, dst_id):
        edge = pydot.Edge(src_id, dst_id)
        edge.set("penwidth", "2")
        dot.add_edge(edge)


def _output_layer(model, index):
    """The layer inside (nested) graph models that makes ``model``'s output ``index``."""
    while _is_graph_model(model):
        model, _, index = model._outputs[index]._history
    return model


def _input_layer(model, index):
    """The box inside (nested) graph models that ``model``'s input ``index`` goes into: a
    functional model's InputLayer, a Sequential model's first layer."""
    while _is_graph_model(model):
        if _is_sequential(model):
            model, index = model.layers[0], 0
        else:
            model = model._inputs[index]._history[0]
    return model


def model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True,
                 rankdir="TB", expand_nested=False, dpi=200, subgraph=False,
                 show_layer_activations=False, show_trainable=False, splines="ortho", **kwargs):
    """The model's graph as a ``pydot.Dot`` (a ``pydot.Cluster`` with ``subgraph=True``).

    Args:
        show_shapes: show each layer's input and output shapes.
        show_dtype: show each layer's output dtype.
        show_layer_names: title the boxes ``name (Class)`` rather than the class alone.
        rankdir: Graphviz's ``rankdir``: ``"TB"`` top to bottom, ``"LR"`` left to right.
        expand_nested: draw nested functional and Sequential models as clusters of their
            layers.
        dpi: the image resolution.
        show_layer_activations: show the activation of layers that have one.
        show_trainable: mark layers with weights trainable or not.
        splines: Graphviz's ``splines`` (``"ortho"``, ``"curved"``, ``"polyline"``, …).
    """
    if kwargs.pop("layer_range", None) is not None:
        raise ValueError("Argument `layer_range` is no longer supported.")
    if kwargs:
        raise ValueError(f"Unrecognized keyword arguments: {kwargs}")
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"model_to_dot: rankdir must be 'TB', 'LR', 'BT' or 'RL', received "
                         f"{rankdir!r}")
    if not getattr(model, "built", False):
        raise ValueError("This model has not yet been built. Build the model first by calling "
                         "`build()` or by calling the model on a batch of data.")
    pydot = _pydot()
    if subgraph:
        dot = pydot.Cluster(style="dashed", graph_name=model.name)
        dot.set("label", model.name)
        dot.set("labeljust", "l")
    else:
        dot = pydot.Dot()
        dot.set("rankdir", rankdir)
        dot.set("concentrate", True)
        dot.set("dpi", dpi)
        dot.set("splines", splines)
        dot.set_node_defaults(shape="record")
    options = dict(show_layer_names=show_layer_names,
                   show_layer_activations=show_layer_activations, show_dtype=show_dtype,
                   show_shapes=show_shapes, show_trainable=show_trainable)

    if not _is_graph_model(model):             # a subclassed model: one box
        dot.add_node(_make_node(pydot, model, options))
        return dot

    layers = model.layers
    for layer in layers:
        if expand_nested and _is_graph_model(layer):
            dot.add_subgraph(model_to_dot(
                layer, show_shapes, show_dtype, show_layer_names, rankdir, expand_nested,
                subgraph=True, show_layer_activations=show_layer_activations,
                show_trainable=show_trainable))
        else:
            dot.add_node(_make_node(pydot, layer, options))

    if _is_sequential(model) and not expand_nested:
        for a, b in zip(layers[:-1], layers[1:]):
            _add_edge(pydot, dot, a, b)
        return dot

    drawn = {id(layer) for layer in layers}
    for node in model._nodes:
        for input_index, t in enumerate(node.flat_inputs):
            source, _, output_index = t._history
            if id(source) not in drawn:      # a Sequential model's own Input: not drawn
                continue
            destination = node.layer
            if expand_nested:
                if _is_graph_model(source):
                    source = _output_layer(source, output_index)
                destination = _input_layer(destination, input_index)
            _add_edge(pydot, dot, source, destination)
    return dot


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False,
               show_layer_names=False, rankdir="TB", expand_nested=False, dpi=200,
               show_layer_activations=False, show_trainable=False, splines="ortho", **kwargs):
    """Draw the model's graph (:func:`model_to_dot`) into ``to_file``; the format is the
    file's extension (``png`` when it has none). A ``.dot`` file is the graph's text and needs
    no Graphviz; other formats need Graphviz's ``dot`` program (``ImportError`` with the
    install hint otherwise). Returns an ``IPython.display.Image`` when IPython is installed
    (and the format is not pdf or dot), else None."""
    if not getattr(model, "built", False):
        raise ValueError("This model has not yet been built. Build the model first by calling "
                         "`build()` or by calling the model on a batch of data.")
    _pydot()
    to_file = os.fspath(to_file)
    extension = os.path.splitext(to_file)[1][1:] or "png"
    dot = model_to_dot(model, show_shapes=show_shapes, show_dtype=show_dtype,
                       show_layer_names=show_layer_names, rankdir=rankdir,
                       expand_nested=expand_nested, dpi=dpi,
                       show_layer_activations=show_layer_activations,
                       show_trainable=show_trainable, splines=splines, **kwargs)
    if extension in ("dot", "gv"):
        with open(to_file, "w", encoding="utf-8") as f:
            f.write(dot.to_string())
        return None
    if not check_graphviz():
        raise ImportError(f"You must install graphviz for `plot_model` to write a "
                          f"{extension!r} image (Graphviz's `dot` program was not found): "
                          f"{_PYDOT_HINT}; or write the graph as text with to_file='model.dot'")
    dot.write(to_file, format=extension)
    if extension != "pdf":
        try:
            from IPython import display
        except ImportError:
            return None
        return display.Image(filename=to_file)
    return None
