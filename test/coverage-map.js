// Every test file is measured against the whole of src/, not only the files it names.
export default () => ['src/**']
