"""Support for the Android and iOS demo apps (android_demo/, ios_demo/): bundling exported models into them."""

from edgelight.apps.bundle import APP_ASSET_DIRS, MANIFEST_NAME, BundleError, bundle, default_app_dir

__all__ = ["APP_ASSET_DIRS", "MANIFEST_NAME", "BundleError", "bundle", "default_app_dir"]
