"""Face detection, tracking and cropping (Qt-free).

* :mod:`engine.faces.types`    :class:`FaceBox`
* :mod:`engine.faces.detector` :class:`FaceDetector` protocol, :class:`MTCNNDetector`
  (default, offline), :class:`RetinaFaceDetector` (optional), :func:`create_face_detector`
* :mod:`engine.faces.tracks`   :class:`FaceTrack`, :func:`build_tracks`, :func:`track_faces`
* :mod:`engine.faces.crops`    :data:`CROP_POLICIES`, :func:`crop_face`, :class:`FaceCrop`

Typical use::

    frames = VideoReader(path).sample(Uniform(32))
    detector = create_face_detector("auto", device="cpu")
    tracks = track_faces(frames, detector)          # tracks[0] is the main face
    crop = crop_face(frames[0].rgb, tracks[0].entries[0].smoothed, "effvit_square224")
    overlay = crop.heatmap_to_frame(cam)            # float32 (H, W), NaN off the crop
"""

from engine.faces.crops import (
    CROP_POLICIES,
    CropPolicy,
    EffVitSquare224,
    FaceCrop,
    FreqSquare1p5,
    MTCNNMargin40_160,
    TMCShifted1p4_224,
    crop_face,
    place_heatmap,
    get_crop_policy,
)
from engine.faces.detector import (
    RETINAFACE_WEIGHTS_ENV,
    FaceDetector,
    MTCNNDetector,
    RetinaFaceDetector,
    RetinaFaceUnavailable,
    create_face_detector,
    resolve_device,
    retinaface_status,
    retinaface_weights_path,
)
from engine.faces.tracks import FaceTrack, TrackEntry, build_tracks, track_faces
from engine.faces.types import FaceBox

__all__ = [
    "FaceBox",
    "FaceDetector",
    "MTCNNDetector",
    "RetinaFaceDetector",
    "RetinaFaceUnavailable",
    "RETINAFACE_WEIGHTS_ENV",
    "create_face_detector",
    "place_heatmap",
    "resolve_device",
    "retinaface_status",
    "retinaface_weights_path",
    "FaceTrack",
    "TrackEntry",
    "build_tracks",
    "track_faces",
    "FaceCrop",
    "CropPolicy",
    "EffVitSquare224",
    "MTCNNMargin40_160",
    "FreqSquare1p5",
    "TMCShifted1p4_224",
    "CROP_POLICIES",
    "get_crop_policy",
    "crop_face",
]
