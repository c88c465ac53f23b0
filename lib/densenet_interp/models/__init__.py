"""Models: build, initialise, pre-train, train and run DenseNet.

=================  ==========================================================================================
``densenet``       compact DenseNet-BC with Keras' layer names, the paper's DenseNet-169, the head,
                   :func:`~densenet.build_model`, :func:`~densenet.load_model`, the paper's five stages by name
``weights``        :func:`~weights.initial_weights`, the ONE policy for what a model starts from (random,
                   stand-in, ImageNet), and the backbone weights files (read, save, load by layer name)
``standin``        the offline stand-in for ImageNet pre-training (shapes and textures)
``training``       the paper's recipe (schedule, augmentation, epoch selection), resumable runs, model cards
``inference``      probabilities of a trained model; :data:`~inference.THRESHOLD` (the paper's 0.5, the one
                   threshold) and the predictions table's columns
``runtime``        how a run executes: op determinism (on), thread pools, oneDNN's instruction set, strategy,
                   precision; :func:`~runtime.execution` records what the bits depend on in the model card
=================  ==========================================================================================
"""
