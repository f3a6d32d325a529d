"""eraserelu: the command line of keras_eraserelu, quick to start.

`eraserelu --help`, `eraserelu COMMAND --help` and a mistyped argument answer
at once: this package imports neither TensorFlow nor Keras. Only after the
arguments parsed does `eraserelu.cli.main` import the command's runner from
`eraserelu.commands` (and with it Keras).

Example:

```
eraserelu inspect ResNet50 --plot resnet50_plan.png
python -m eraserelu models "cifar_resnet*" --no-params
```
"""
