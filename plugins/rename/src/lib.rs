use weir_plugin_sdk as _;
