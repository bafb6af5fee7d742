"""The Stacked MNIST tier's registrations (entry point `r3bench.plugins`): data set, small ResNet, classifier features (Tables 1, 3)."""
from roadmap.fid import register_feature_network
from stackedmnist import data, models  # noqa: F401  (importing registers them)


def _classifier_features():
    from stackedmnist.classifier import features, load_classifier

    model = load_classifier()
    return lambda images: features(images, model)


register_feature_network("stackedmnist", "fd_mnist_classifier", _classifier_features)
