<?php
// Router for `php -S 127.0.0.1:<port> -t <docroot> router.php`, where <docroot> holds
// symlinks to Debian's /usr/share/wordpress beside its own wp-config.php and wp-content/.
//
// WordPress finds its wp-config.php next to the real wp-load.php (PHP resolves symlinks in
// __FILE__), which on Debian is /usr/share/wordpress/wp-config.php, reading /etc/wordpress.
// Defining ABSPATH as the docroot first makes it read the docroot's wp-config.php instead.
define('ABSPATH', rtrim($_SERVER['DOCUMENT_ROOT'], '/') . '/');

$path = rawurldecode(parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH) ?? '/');
if (str_contains($path, '..')) {
    http_response_code(400);
    return true;
}
$file = ABSPATH . ltrim($path, '/');
if (is_dir($file)) {
    $path = rtrim($path, '/') . '/index.php';
    $file = rtrim($file, '/') . '/index.php';
}
if (!is_file($file)) {
    // Pretty permalinks, as Apache's rewrite rules in WordPress's .htaccess do.
    $path = '/index.php';
    $file = ABSPATH . 'index.php';
} elseif (!str_ends_with($file, '.php')) {
    return false;  // a static file: the built-in server sends it
}
$_SERVER['SCRIPT_NAME'] = $_SERVER['PHP_SELF'] = $path;
$_SERVER['SCRIPT_FILENAME'] = $file;
chdir(dirname($file));
require $file;
return true;
